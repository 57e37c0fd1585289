"""Labelled questions for bench/retrieval.py: on the 18F handbook (a real organisation's wiki in ../shared/corpora),
and follow-ups in threads on the sample wiki.

The files' origin and how they were written: bench/questions/README.md and sample_followups.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDBOOK = ROOT.parent / "shared" / "corpora" / "18f-handbook"
HANDBOOK_QUESTIONS = Path(__file__).resolve().parent / "questions" / "18f_handbook.jsonl"
HANDBOOK_AGAIN = Path(__file__).resolve().parent / "questions" / "18f_handbook_again.jsonl"
HANDBOOK_BASE_URL = "https://handbook.tts.gsa.gov/{path}/"
SAMPLE_FOLLOWUPS = Path(__file__).resolve().parent / "questions" / "sample_followups.jsonl"
FOLLOWUP_KINDS = ("elliptical", "switch")  # names no topic of its own / changes the thread's topic
KINDS = ("direct", "fact", "paraphrase", "lookalike")
SPLITS = ("tune", "held-out")  # settings are chosen on "tune"; "held-out" checks they were not fitted to it


@dataclass(frozen=True)
class KindQuestion:
    question: str
    pages: tuple[str, ...]  # page keys (paths below the corpus's pages/ folder, without suffix)
    section: str
    kind: str  # one of KINDS
    split: str  # one of SPLITS


def handbook_questions(path: Path = HANDBOOK_QUESTIONS) -> list[KindQuestion]:
    rows = map(json.loads, filter(str.strip, path.read_text(encoding="utf-8").splitlines()))
    return [KindQuestion(r["question"], tuple(r["pages"]), r["section"], r["kind"], r["split"]) for r in rows]


@dataclass(frozen=True)
class AskedAgain:
    """A handbook question as another employee asks it later, in other words (same gold pages, kind and half)."""

    question: str
    original: str  # the question of 18f_handbook.jsonl it asks again
    pages: tuple[str, ...]
    kind: str
    split: str


def handbook_asked_again(path: Path = HANDBOOK_AGAIN) -> list[AskedAgain]:
    rows = map(json.loads, filter(str.strip, path.read_text(encoding="utf-8").splitlines()))
    return [AskedAgain(r["question"], r["original"], tuple(r["pages"]), r["kind"], r["split"]) for r in rows]


@dataclass(frozen=True)
class FollowUp:
    earlier: str  # the question asked before it in the thread
    question: str
    pages: tuple[str, ...]  # the sample wiki's page keys, as its labelled questions name them
    kind: str  # one of FOLLOWUP_KINDS


def sample_followups(path: Path = SAMPLE_FOLLOWUPS) -> list[FollowUp]:
    rows = map(json.loads, filter(str.strip, path.read_text(encoding="utf-8").splitlines()))
    return [FollowUp(r["history"][-1], r["question"], tuple(r["pages"]), r["kind"]) for r in rows]

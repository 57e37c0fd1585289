"""Labelled questions on the 18F handbook (a real organisation's wiki in ../shared/corpora), for bench/retrieval.py.

The file's origin and how it was written: bench/questions/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDBOOK = ROOT.parent / "shared" / "corpora" / "18f-handbook"
HANDBOOK_QUESTIONS = Path(__file__).resolve().parent / "questions" / "18f_handbook.jsonl"
HANDBOOK_BASE_URL = "https://handbook.tts.gsa.gov/{path}/"
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

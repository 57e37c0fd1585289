"""The bundled sample wiki (a fictional insurer's intranet): one folder per space, and labelled questions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from retrieval.index import WikiIndex
from retrieval.ingest.pipeline import IngestReport

SAMPLE_WIKI = Path(__file__).resolve().parent / "sample_wiki"
SAMPLE_BASE_URL = "https://wiki.harborline.example/"


@dataclass(frozen=True)
class LabelledQuestion:
    question: str
    pages: tuple[str, ...]  # "space/page_key"
    section: str
    # What a correct answer must contain: each fact is a tuple of acceptable alternatives
    # (case-insensitive substrings of the answer; any one alternative counts).
    facts: tuple[tuple[str, ...], ...] = ()


def sample_spaces() -> list[str]:
    return sorted(p.name for p in (SAMPLE_WIKI / "pages").iterdir() if p.is_dir())


async def ingest_sample_wiki(index: WikiIndex, progress: bool = False) -> list[IngestReport]:
    """Ingest each folder of the sample wiki as the space of that name."""
    ingestor = index.ingestor(progress=progress)
    return [
        await ingestor.ingest(SAMPLE_WIKI / "pages" / space, space, f"{SAMPLE_BASE_URL}{space}/")
        for space in sample_spaces()
    ]


def labelled_questions() -> list[LabelledQuestion]:
    lines = (SAMPLE_WIKI / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [
        LabelledQuestion(
            row["question"],
            tuple(row["pages"]),
            row["section"],
            tuple(tuple(fact) for fact in row.get("facts", ())),
        )
        for row in map(json.loads, filter(str.strip, lines))
    ]

"""The labelled questions are well formed: every gold page (and section) exists in its wiki."""

import re
from collections import Counter

import pytest

from bench.labelled import (
    FOLLOWUP_KINDS, HANDBOOK, HANDBOOK_BASE_URL, KINDS, SPLITS, handbook_questions, sample_followups,
)
from retrieval.ingest.sources import load_source
from retrieval.sample import SAMPLE_WIKI

QUESTIONS = handbook_questions()
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def plain(heading: str) -> str:
    return re.sub(r"[*_`\\]", "", heading).strip()


def test_enough_questions_of_every_kind_in_both_halves():
    assert len(QUESTIONS) >= 100
    assert len({q.question.strip().lower() for q in QUESTIONS}) == len(QUESTIONS), "a question is repeated"
    assert {q.kind for q in QUESTIONS} == set(KINDS) and {q.split for q in QUESTIONS} == set(SPLITS)
    per_half = Counter((q.kind, q.split) for q in QUESTIONS)
    for kind in KINDS:
        tune, held_out = per_half[kind, "tune"], per_half[kind, "held-out"]
        assert min(tune, held_out) >= 10 and abs(tune - held_out) <= 1, f"{kind}: {tune} tune, {held_out} held out"
    assert all(q.question.strip() and q.pages and len(set(q.pages)) == len(q.pages) for q in QUESTIONS)


@pytest.mark.skipif(not HANDBOOK.is_dir(), reason=f"{HANDBOOK} is absent")
def test_gold_pages_and_sections_are_in_the_handbook():
    pages = {page.page_key: page for page in load_source(HANDBOOK / "pages", HANDBOOK_BASE_URL).pages}
    wrong = []
    for q in QUESTIONS:
        if missing := [key for key in q.pages if key not in pages]:
            wrong.append(f"{q.question!r}: no page {missing} (or it has no text)")
            continue
        headings = {plain(h) for key in q.pages for h in _HEADING.findall(pages[key].body)} | {""}
        if plain(q.section) not in headings:
            wrong.append(f"{q.question!r}: no heading {q.section!r} on {q.pages}")
    assert not wrong, "\n".join(wrong)


def test_follow_ups_of_both_kinds_point_at_sample_wiki_pages():
    followups = sample_followups()
    assert Counter(f.kind for f in followups) == dict(zip(FOLLOWUP_KINDS, (35, 15), strict=True))
    assert len({f.question.strip().lower() for f in followups}) == len(followups), "a follow-up is repeated"
    pages = SAMPLE_WIKI / "pages"
    missing = [(f.question, key) for f in followups for key in f.pages if not (pages / f"{key}.md").is_file()]
    assert not missing and all(f.earlier.strip() for f in followups)

"""The labelled questions' facts: short strings a correct answer must contain, each backed by the gold page."""

import pytest

from retrieval.sample import SAMPLE_WIKI, LabelledQuestion, labelled_questions

QUESTIONS = labelled_questions()


def gold_page_text(labelled: LabelledQuestion) -> str:
    return (SAMPLE_WIKI / "pages" / f"{labelled.pages[0]}.md").read_text(encoding="utf-8")


def test_every_question_has_facts():
    assert len(QUESTIONS) == 118
    assert all(isinstance(fact, tuple) for q in QUESTIONS for fact in q.facts)


@pytest.mark.parametrize("labelled", QUESTIONS, ids=lambda q: q.question[:50])
def test_facts_are_few_short_and_found_on_the_gold_page(labelled: LabelledQuestion):
    assert 1 <= len(labelled.facts) <= 3
    page = gold_page_text(labelled).lower()
    for fact in labelled.facts:
        assert fact, "a fact needs at least one alternative"
        assert all(isinstance(alt, str) and 0 < len(alt.strip()) and len(alt) <= 40 for alt in fact), fact
        assert any(alt.lower() in page for alt in fact), f"no alternative of {fact} on {labelled.pages[0]}"

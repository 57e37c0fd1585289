"""Which sources a correction labels as right for its question (training.labels.relevance_labels). Pure."""

from core.answer_log import Corrected, FeedbackItem
from retrieval.models import RelevanceLabel
from training.labels import relevance_labels

QUESTION = "how many days of bereavement leave for a grandparent?"
SOURCES = [
    {"n": 1, "chunk_id": 10, "page_id": 7, "space": "hr", "title": "Parental leave", "section": "Eligibility",
     "url": "https://wiki/hr/parental-leave#eligibility", "text": "Twelve weeks of paid parental leave.", "score": 1},
    {"n": 2, "chunk_id": 20, "page_id": 8, "space": "hr", "title": "Bereavement leave", "section": "How many days",
     "url": "https://wiki/hr/bereavement-leave#how-many-days", "text": "Five days for a grandparent.", "score": 0.5},
    {"n": 3, "chunk_id": 30, "page_id": 9, "space": "hr", "title": "Sick leave", "section": "",
     "url": "https://wiki/hr/sick-leave", "text": "Ten days of sick leave a year.", "score": 0.3},
]  # fmt: skip


def corrected(text: str, source_n: int | None = None, feedback_id: int = 1) -> Corrected:
    return Corrected(FeedbackItem(feedback_id, 100, "U2", "correction", text=text, source_n=source_n), QUESTION, SOURCES)


def labelled(*items: Corrected) -> list[tuple[int, int, str]]:
    return [(label.feedback_id, label.page_id, label.url) for label in relevance_labels(items)]


def test_the_source_picked_in_the_form_is_labelled_right_for_the_question():
    (label,) = relevance_labels([corrected("It is five days.", source_n=2)])
    assert label == RelevanceLabel(1, QUESTION, 8, "https://wiki/hr/bereavement-leave#how-many-days")


def test_a_correction_citing_linking_or_naming_a_source_labels_it():
    assert labelled(corrected("It's 5 days [2].")) == [(1, 8, SOURCES[1]["url"])]
    assert labelled(corrected("See <https://wiki/hr/sick-leave|this page>.")) == [(1, 9, SOURCES[2]["url"])]
    assert labelled(corrected("The Bereavement leave page has it.")) == [(1, 8, SOURCES[1]["url"])]
    assert labelled(corrected("Both count [1][3].")) == [(1, 7, SOURCES[0]["url"]), (1, 9, SOURCES[2]["url"])]


def test_a_correction_that_names_no_source_labels_nothing():
    assert labelled(corrected("That's wrong."), corrected("Ask your manager about it.", feedback_id=2)) == []


def test_a_source_picked_that_the_answer_did_not_have_labels_nothing():
    assert labelled(corrected("It is five days.", source_n=9), corrected("It is five days [7].", feedback_id=2)) == []

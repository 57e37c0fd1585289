"""Judging answers as a reader would: citations of the right source, copying, facts (pure)."""

from __future__ import annotations

import math

from core.prompt import Source, build_messages
from training.answer_quality import (
    EXAMPLE_ANSWERS,
    EXAMPLE_CHARS,
    AnswerCase,
    AnswerMetrics,
    answer_cases,
    answer_metrics,
    check_answer,
    copies,
    decide_answers,
    prompt_sources,
    summarize,
)

SOURCES = [
    {"n": 1, "title": "Sick Leave", "section": "Accrual", "url": "https://wiki/hr/sick-leave/#accrual",
     "text": "Employees accrue one sick day per month of service, up to twelve days a year, and unused days "
             "carry over to the next calendar year up to a maximum balance of thirty days in total."},
    {"n": 2, "title": "Bereavement Leave", "section": "", "url": "https://wiki/hr/bereavement-leave/",
     "text": "Up to five days of paid leave for a close family member; three days for a grandparent."},
]  # fmt: skip
PAGES = ["hr/sick-leave", "hr/bereavement-leave"]


def test_an_answer_citing_the_right_page_in_its_own_words():
    check = check_answer("You get three days for a grandparent [2].", SOURCES, PAGES, ["hr/bereavement-leave"],
                         [["three days", "3 days"]])  # fmt: skip
    assert check.cites_any and check.cites_gold and check.first_gold and check.has_fact
    assert check.gold_not_first, "[1] was a look-alike and it still chose the right one"
    assert not check.invalid and not check.echo and not check.not_covered


def test_copying_the_source_block_is_echo_even_when_it_cites_right():
    header = "[1] Sick Leave › Accrual\nURL: https://wiki/hr/sick-leave/#accrual\nEmployees accrue one sick day"
    assert check_answer(header, SOURCES, PAGES, ["hr/sick-leave"]).echo
    long_copy = SOURCES[0]["text"] + " [1]"
    check = check_answer(long_copy, SOURCES, PAGES, ["hr/sick-leave"])
    assert check.echo and check.cites_gold and check.gold_not_first is None, "[1] is gold: not a test of choosing"


def test_a_short_quote_is_not_echo():
    assert not copies("They accrue one sick day per month of service [1].", SOURCES[0]["text"])


def test_invented_numbers_are_invalid_and_a_wrong_page_is_not_gold():
    check = check_answer("Twelve days a year [1][6].", SOURCES, PAGES, ["hr/bereavement-leave"], [["three"]])
    assert check.invalid and check.cites_any and not check.cites_gold and not check.has_fact


def test_gold_measures_apply_only_where_the_gold_page_was_retrieved():
    check = check_answer("The wiki does not cover this.", SOURCES, PAGES, ["it/vpn"])
    assert check.not_covered and check.gold_retrieved is False
    assert check.cites_gold is None and check.first_gold is None and check.has_fact is None


def test_summaries_are_shares_of_the_answers_each_measure_applies_to():
    checks = [
        check_answer("Three days [2].", SOURCES, PAGES, ["hr/bereavement-leave"]),
        check_answer("Twelve days [1].", SOURCES, PAGES, ["hr/bereavement-leave"]),
        check_answer("No idea.", SOURCES, PAGES, ["it/vpn"]),
    ]
    summary = summarize(checks)
    assert summary["answers"] == 3 and summary["cites_any"] == 2 / 3
    assert summary["cites_gold"] == 0.5 and summary["gold_not_first"] == 0.5
    assert math.isnan(summary["has_fact"])


def answer_case() -> AnswerCase:
    sources = [Source(d["n"], d["n"], "hr", d["title"], d["section"], d["url"], d["text"], 1.0, n=d["n"])
               for d in SOURCES]  # fmt: skip
    return AnswerCase(build_messages("How many days for a grandparent?", sources), frozenset({2}))


def test_the_prompt_source_block_is_read_back_as_written():
    headers, texts = prompt_sources(answer_case().prompt[-1]["content"])
    assert headers == ["[1] Sick Leave › Accrual", "URL: https://wiki/hr/sick-leave/#accrual",
                       "[2] Bereavement Leave", "URL: https://wiki/hr/bereavement-leave/"]  # fmt: skip
    assert texts == [SOURCES[0]["text"], SOURCES[1]["text"]]


def test_answer_cases_know_which_sources_preferred_answers_cite():
    prompt = answer_case().prompt
    pairs = [{"prompt": prompt, "chosen": [{"role": "assistant", "content": "Three days [2]."}], "rejected": []},
             {"prompt": prompt, "chosen": [{"role": "assistant", "content": "Three days [2], see [1]."}]}]
    assert answer_cases(pairs) == [AnswerCase(prompt, frozenset({1, 2}))]


def test_an_adapter_that_copies_the_source_block_fails_the_answer_gate():
    case = answer_case()
    active = answer_metrics(["I think it is five days [1]."], [case])
    copied = case.prompt[-1]["content"].split("Sources:\n\n")[1].split("\n\nQuestion")[0]  # cites [1] and [2]
    candidate = answer_metrics([copied], [case])
    assert candidate.cites_right == 1.0 > active.cites_right and candidate.echo == 1.0
    promote, reason = decide_answers(candidate, active)
    assert not promote and reason.startswith("copies the sources more often")


def test_the_answer_gate_wants_better_citations_and_no_invented_numbers():
    case = answer_case()
    active = answer_metrics(["Five days [1]."], [case])
    assert decide_answers(answer_metrics(["Three days for a grandparent [2]."], [case]), active)[0]
    assert not decide_answers(answer_metrics(["Five days [1]."], [case]), active)[0], "no better"
    promote, reason = decide_answers(answer_metrics(["Three days [2][7]."], [case]), active)
    assert not promote and reason.startswith("invents source numbers")


def test_the_gate_keeps_the_first_answers_to_read_beside_its_figures():
    case = answer_case()
    answers = [f"Answer {i}: three days [2]. " + "More. " * 80 for i in range(EXAMPLE_ANSWERS + 2)]
    metrics = answer_metrics(answers, [case] * len(answers))
    assert [e.split(":")[0] for e in metrics.examples] == [f"Answer {i}" for i in range(EXAMPLE_ANSWERS)]
    assert all(answers[i].startswith(e) and len(e) == EXAMPLE_CHARS for i, e in enumerate(metrics.examples))
    assert AnswerMetrics(**metrics.as_dict()) == metrics, "stored with the adapter and read back"

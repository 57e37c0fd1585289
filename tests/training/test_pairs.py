"""training.pairs: every rule, with plain objects (no database)."""

from __future__ import annotations

import itertools

from training.pairs import FeedbackItem, LoggedAnswer, PreferencePair, as_written, build_pairs, distractors, split_of

_ids = itertools.count(1)


def prompt(question: str = "How many days of bereavement leave?", n_sources: int = 4) -> list[dict[str, str]]:
    listing = "\n\n".join(f"[{n}] Page {n}\nURL: https://w/{n}\ntext {n}" for n in range(1, n_sources + 1))
    return [
        {"role": "system", "content": "You are wikibot."},
        {"role": "user", "content": f"Sources:\n\n{listing}\n\nQuestion: {question}"},
    ]


def answer(
    id_: int,
    text: str = "Five days [2].",
    cited: list[int] | None = None,
    *,
    question: str = "How many days?",
    n_sources: int = 4,
    status: str = "answered",
) -> LoggedAnswer:
    sources = [
        {"n": n, "title": f"Page {n}", "section": "", "url": f"https://w/{n}", "text": f"text {n}"}
        for n in range(1, n_sources + 1)
    ]
    return LoggedAnswer(id_, prompt(question, n_sources), sources, text, [2] if cited is None else cited, status)


def vote(interaction_id: int, user: str, value: int) -> FeedbackItem:
    return FeedbackItem(next(_ids), interaction_id, user, "rating", value)


def correction(interaction_id: int, text: str, source_n: int | None = None, user: str = "U9") -> FeedbackItem:
    return FeedbackItem(next(_ids), interaction_id, user, "correction", None, text, source_n)


def by_kind(pairs: list[PreferencePair]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for p in pairs:
        out.setdefault(p.kind, []).append((p.chosen, p.rejected))
    return out


def test_a_liked_answer_is_chosen_against_copies_citing_uncited_sources_in_rank_order():
    a = answer(10, "Five days [2]. Three for a cousin [2][4].", cited=[2, 4])
    built = build_pairs([a], [vote(10, "U1", 1)])
    assert by_kind(built.pairs) == {
        "distractor": [
            (a.answer, "Five days [1]. Three for a cousin [1]."),
            (a.answer, "Five days [3]. Three for a cousin [3]."),
        ]
    }
    pair = built.pairs[0]
    assert pair.interaction_id == 10 and pair.prompt == a.prompt_messages  # the logged prompt, exactly
    assert pair.to_trl() == {
        "prompt": a.prompt_messages,
        "chosen": [{"role": "assistant", "content": a.answer}],
        "rejected": [{"role": "assistant", "content": "Five days [1]. Three for a cousin [1]."}],
    }
    assert built.stats["rated_up"] == 1 and built.interaction_ids == (10,)


def test_max_distractors_and_answers_without_citations():
    a = answer(10)
    assert len(build_pairs([a], [vote(10, "U1", 1)], max_distractors=3).pairs) == 3
    assert build_pairs([a], [vote(10, "U1", 1)], max_distractors=0).pairs == []
    assert distractors("Five days.", [1, 2, 3], 2) == []
    assert distractors("Five days [1, 3].", [1, 2, 3], 2) == ["Five days [2]."]


def test_net_rating_decides_and_a_tie_gives_no_signal():
    up, tie, down = answer(1, question="a"), answer(2, question="b"), answer(3, question="c")
    feedback = [vote(1, "U1", 1), vote(1, "U2", 1), vote(1, "U3", -1), vote(2, "U1", 1), vote(2, "U2", -1),
                vote(3, "U1", -1)]
    built = build_pairs([up, tie, down], feedback)
    assert {p.interaction_id for p in built.pairs} == {1}
    assert (built.stats["rated_up"], built.stats["tied"], built.stats["rated_down"]) == (1, 1, 1)
    assert built.stats["rejected_unpaired"] == 1  # the 👎 answer: nothing better to pair it with
    assert set(built.pairs[0].feedback_ids) == {f.feedback_id for f in feedback[:3]}
    assert set(built.interaction_ids) == {1}


def test_only_answered_prompts_with_sources_are_used():
    answers = [answer(1, status="llm_error", question="a"), answer(2, n_sources=0, question="b")]
    built = build_pairs(answers, [vote(1, "U1", 1), vote(2, "U1", 1), correction(2, "Ten days.")])
    assert built.pairs == [] and built.stats["answers_skipped"] == 2 and built.stats["answers"] == 0


def test_a_correction_is_chosen_as_written_and_outranks_likes():
    a = answer(10, "Three days [2].")
    feedback = [vote(10, "U1", 1), vote(10, "U3", 1), correction(10, "Five days, see [3] and [9].", user="U2")]
    built = build_pairs([a], feedback)
    kinds = by_kind(built.pairs)
    assert kinds["correction"] == [("Five days, see [3] and.", "Three days [2].")]  # [9] is no source: dropped
    assert kinds["distractor"] == [("Five days, see [3] and.", "Five days, see [1] and."),
                                   ("Five days, see [3] and.", "Five days, see [2] and.")]
    assert "rating" not in kinds  # the 👍 answer was corrected: it is rejected, not chosen
    assert built.pairs[0].feedback_ids == tuple(f.feedback_id for f in feedback)


def test_a_correction_without_citations_cites_source_n_else_what_the_answer_cited():
    modal = correction(1, "Five days, paid.", source_n=3)
    reply = correction(1, "Five days, paid")
    assert as_written(modal, [2], 4) == "Five days, paid [3]."
    assert as_written(reply, [2, 4], 4) == "Five days, paid [2, 4]"
    assert as_written(correction(1, "Five days!", source_n=7), [2], 4) == "Five days [2]!"  # 7: no such source
    assert as_written(correction(1, "  Five days.  "), [], 4) == "Five days."  # nothing to cite
    assert as_written(correction(1, "Five days [1].", source_n=3), [2], 4) == "Five days [1]."  # own [n] first


def test_a_downvoted_answer_with_a_correction_makes_one_pair_per_rejected_answer():
    a = answer(10, "Three days [2].")
    built = build_pairs([a], [vote(10, "U1", -1), correction(10, "Five days.", source_n=1)])
    assert by_kind(built.pairs) == {
        "correction": [("Five days [1].", "Three days [2].")],
        "distractor": [("Five days [1].", "Five days [2]."), ("Five days [1].", "Five days [3].")],
    }


def test_the_latest_correction_wins_and_empty_ones_are_ignored():
    a = answer(10, "Three days [2].")
    first, latest = correction(10, "Four days [1].", user="U1"), correction(10, "Five days [3].", user="U2")
    built = build_pairs([a], [latest, first, correction(10, "   ")], max_distractors=0)
    assert by_kind(built.pairs) == {"correction": [("Five days [3].", "Three days [2].")]}
    assert built.stats["corrections"] == 1 and built.stats["corrections_superseded"] == 1
    assert all("Four" not in p.chosen + p.rejected for p in built.pairs)  # the earlier text is not used


def test_an_earlier_correction_still_rejects_the_answer_it_corrected():
    liked, corrected = answer(5, "Five days [2]."), answer(7, "Two days [3].", [3])
    old, new = correction(7, "Four days [1]."), correction(5, "Six days [4].")
    built = build_pairs([liked, corrected], [vote(5, "U1", 1), old, new], max_distractors=0)
    assert by_kind(built.pairs) == {
        "correction": [("Six days [4].", "Five days [2]."), ("Six days [4].", "Two days [3].")]
    }
    assert old.feedback_id in built.pairs[1].feedback_ids


def test_comments_make_no_pairs():
    built = build_pairs([answer(10)], [FeedbackItem(next(_ids), 10, "U1", "comment", None, "Thanks!")])
    assert built.pairs == [] and built.stats["comments"] == 1 and built.feedback_ids == ()


def test_answers_to_the_same_prompt_are_compared_and_identical_texts_pooled():
    good, bad, bad_again = answer(5, "Five days [2]."), answer(7, "Two days [3].", [3]), answer(9, "Two days [3].", [3])
    other = answer(6, "Five days [2].", question="Something else?")
    feedback = [vote(5, "U1", 1), vote(7, "U1", -1), vote(9, "U2", -1), vote(9, "U3", 1), vote(6, "U1", -1)]
    built = build_pairs([bad_again, good, other, bad], feedback, max_distractors=1)
    assert [(p.interaction_id, p.kind, p.chosen, p.rejected) for p in built.pairs] == [
        (5, "rating", "Five days [2].", "Two days [3]."),  # 7 and 9 pooled: net -1
        (5, "distractor", "Five days [2].", "Five days [1]."),
    ]
    assert set(built.interaction_ids) == {5, 7, 9}


def test_a_pair_found_twice_is_kept_once_with_all_its_feedback():
    good, wrong_source = answer(5, "Five days [2]."), answer(7, "Five days [1].", [1])
    built = build_pairs([good, wrong_source], [vote(5, "U1", 1), vote(7, "U2", -1)])
    assert by_kind(built.pairs) == {
        "rating": [("Five days [2].", "Five days [1].")],  # also the first distractor
        "distractor": [("Five days [2].", "Five days [3].")],
    }
    assert built.pairs[0].feedback_ids == built.feedback_ids and built.stats["pairs_merged"] == 1


def test_the_split_is_by_prompt_deterministic_and_near_the_fraction():
    splits = [split_of(i, 0.2) for i in range(1, 5001)]
    assert splits == [split_of(i, 0.2) for i in range(1, 5001)]
    assert 0.17 < splits.count("heldout") / len(splits) < 0.23
    assert all(split_of(i, 0.1) == "train" for i in range(1, 5001) if splits[i - 1] == "train")  # nested
    assert split_of(42, 0.0) == "train"

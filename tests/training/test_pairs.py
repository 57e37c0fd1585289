"""training.pairs: every rule, with plain objects (no database)."""

from __future__ import annotations

import itertools

from core.answer_log import FeedbackItem, LoggedAnswer
from core.prompt import Source, Turn, build_messages, cited_numbers, format_sources
from training.answer_quality import prompt_sources
from training.pairs import (
    DEFAULT_SOURCE_ORDERS, SIMILARITY_THRESHOLD, PreferencePair, as_written, build_pairs,
    distractors, listed_sources, renumber_citations, reorder, similarity, source_orders_for, split_of,
)

_ids = itertools.count(1)
WIKI = "https://wiki.harborline.example"


def chunk(n: int, title: str, section: str, url: str, text: str) -> dict[str, object]:
    return {"n": n, "chunk_id": 100 + n, "page_id": n, "space": "hr", "title": title, "section": section,
            "url": f"{WIKI}/{url}", "text": text, "score": 1 / n}


# What a leave question retrieves from the sample wiki (retrieval/sample_wiki/pages/hr), chunked as ingested:
# two chunks of one page, and look-alike pages.
HR = [
    chunk(1, "Sick Leave", "Sick Leave Allowance", "hr/sick-leave#sick-leave-allowance",
          "- Every full-time employee gets **10 sick days per year**, credited in full on **January 1** "
          "(front-loaded).\n- New hires receive a pro-rated allowance for their first calendar year, rounded up "
          "to a whole day.\n- Part-time employees receive sick leave pro-rata to scheduled hours."),
    chunk(2, "Bereavement Leave", "How Many Days", "hr/bereavement-leave#how-many-days",
          "| Relationship | Paid bereavement days |\n|---|---|\n| Spouse or domestic partner, child, stepchild, "
          "parent, stepparent, sibling | 5 days |\n| Grandparent, grandchild, parent-in-law, sibling-in-law, aunt, "
          "uncle | 3 days |\n| Close friend or colleague (to attend the service) | 1 day |"),
    chunk(3, "Bereavement Leave", "Notice Rules for Bereavement Leave",
          "hr/bereavement-leave#notice-rules-for-bereavement-leave",
          "- No advance notice is required. Tell your manager **as soon as practical** — a short message is "
          "enough.\n- Record the leave in PeopleHub within **5 business days** of returning.\n- No documentation is "
          "normally required. HR may ask for an obituary or funeral notice only if you request more than the "
          "standard days."),
    chunk(4, "Vacation Leave", "Carryover and Payout", "hr/vacation-leave#carryover-and-payout",
          "- You may carry over up to **5 unused vacation days** into the next year.\n- Carried-over days must be "
          "used by **March 31**; any left after that are forfeited.\n- Unused accrued vacation is paid out when you "
          "leave Harborline."),
    chunk(5, "Sick Leave", "Calling In Sick > Doctor's Note", "hr/sick-leave#doctors-note",
          "A doctor's note is required for absences of **more than 3 consecutive working days**. Managers may not "
          "ask for a note for shorter absences unless there is a documented attendance concern agreed with HR."),
]
IT = [
    chunk(1, "Password Reset", "Password Rules", "it/password-reset#password-rules",
          "- Minimum **14 characters**; a passphrase of 4 or more words is recommended.\n- Passwords expire every "
          "**180 days**. You get reminders 14, 7 and 1 day before expiry.\n- The last **10 passwords** cannot be "
          "reused."),
    chunk(2, "Password Reset", "Account Lockout", "it/password-reset#account-lockout",
          "- Your account locks after **5 failed sign-in attempts**.\n- It unlocks automatically after **30 "
          "minutes**.\n- If you cannot wait, use KeyReset (which also unlocks the account) or call the Service Desk."),
    chunk(3, "Laptop Requests", "Requesting a Laptop > Upgrades and Additional Equipment",
          "it/laptop-requests#upgrades-and-additional-equipment",
          "- Submit a **Hardware Request** in ServicePort with a business justification.\n- Monitors (up to two "
          "27-inch), docks, keyboards and headsets come from the same form; no approval needed beyond your "
          "manager."),
]


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


def copied(n: int) -> str:
    """Source n's block as `prompt` lists it: what a model copying its prompt writes."""
    return f"[{n}] Page {n}\nURL: https://w/{n}\ntext {n}"


def in_logged_order(*args: object, **kwargs: object):
    """build_pairs without reordered copies: the pairs in the logged source order (the copies have their tests)."""
    return build_pairs(*args, **{"source_orders": 0, **kwargs})  # type: ignore[arg-type]


def by_kind(pairs: list[PreferencePair]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for p in pairs:
        out.setdefault(p.kind, []).append((p.chosen, p.rejected))
    return out


def test_a_liked_answer_is_chosen_against_copies_citing_uncited_sources_in_rank_order():
    a = answer(10, "Five days [2]. Three for a cousin [2][4].", cited=[2, 4])
    built = in_logged_order([a], [vote(10, "U1", 1)])
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
    assert len(in_logged_order([a], [vote(10, "U1", 1)], max_distractors=3).pairs) == 3
    assert in_logged_order([a], [vote(10, "U1", 1)], max_distractors=0).pairs == []
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
    built = in_logged_order([a], feedback)
    kinds = by_kind(built.pairs)
    assert kinds["correction"] == [("Five days, see [3] and.", "Three days [2].")]  # [9] is no source: dropped
    assert kinds["distractor"] == [("Five days, see [3] and.", "Five days, see [1] and."),
                                   ("Five days, see [3] and.", "Five days, see [2] and."),
                                   ("Five days, see [3] and.", copied(3))]  # never the source text itself
    assert "rating" not in kinds  # the 👍 answer was corrected: it is rejected, not chosen
    assert built.pairs[0].feedback_ids == tuple(f.feedback_id for f in feedback)


def fixed(text: str, sources: list[dict[str, object]] = HR, source_n: int | None = None) -> tuple[str, str]:
    """The correction as written, and the rule that gave its citation."""
    return as_written(correction(1, text, source_n), sources)


def test_a_correction_keeps_its_own_valid_citations():
    assert fixed("Three days for a grandparent [2], see also [9].") == (
        "Three days for a grandparent [2], see also.", "own_citations")  # [9] is no source: dropped
    assert fixed("Five days [1].", source_n=3) == ("Five days [1].", "own_citations")  # before the modal's source


def test_a_correction_from_the_modal_cites_the_source_picked_there():
    assert fixed("Three days for a grandparent.", source_n=2) == ("Three days for a grandparent [2].", "source_n")
    assert fixed("Three days for a grandparent!", source_n=4) == ("Three days for a grandparent [4]!", "source_n")
    # no such source: the rules after it decide (the page is named)
    assert fixed("Bereavement Leave: three days.", source_n=7) == ("Bereavement Leave: three days [2].", "named")


def test_a_correction_naming_a_page_cites_it():
    assert fixed("It's 3 days for a grandparent, it's on the bereavement leave page.") == (
        "It's 3 days for a grandparent, it's on the bereavement leave page [2].", "named")
    assert fixed("Check the Doctor's Note part: only after 3 days off.") == (
        "Check the Doctor's Note part: only after 3 days off [5].", "named")  # its section, alone
    assert fixed("Sick leaves are unlimited.")[1] == "uncited"  # not the title's words: no name


def test_naming_a_page_retrieved_twice_cites_its_best_ranked_chunk_unless_the_section_is_named():
    assert fixed("That's on the Bereavement Leave page.") == ("That's on the Bereavement Leave page [2].", "named")
    notice_first = [{**HR[2], "n": 1}, {**HR[1], "n": 2}]  # the same page's chunks, the other way round
    assert fixed("That's on the Bereavement Leave page.", notice_first)[0].endswith("page [1].")
    assert fixed("Bereavement Leave, How Many Days: 3 for an aunt.", notice_first) == (
        "Bereavement Leave, How Many Days: 3 for an aunt [2].", "named")
    assert fixed("No notice needed, see Notice Rules for Bereavement Leave.") == (
        "No notice needed, see Notice Rules for Bereavement Leave [3].", "named")


def test_a_correction_quoting_a_source_cites_it():
    text = 'No: "managers may NOT ask for a note for shorter absences", unless HR agreed.'
    assert fixed(text) == (text[:-1] + " [5].", "quoted")
    assert fixed("Managers may not ask for a note, it's the rule.")[1] == "similar"  # 7 words: no quote
    home = [  # look-alike pages share runs of words: the source with more of the quote wins
        chunk(1, "HomeShield Premier", "Coverages and Limits > Water Damage (Premier)", "products/homeshield-premier",
              "Sudden and accidental discharge of water is covered **up to the full Coverage A limit** — there is "
              "no water damage sublimit on Premier."),
        chunk(2, "HomeShield Plus", "Coverages and Limits > Water Damage Sublimit (Plus)", "products/homeshield-plus",
              "Sudden and accidental discharge of water is covered up to **$25,000 per occurrence**. This includes "
              "tear-out, drying and repair of the system that failed."),
    ]
    text = "Sudden and accidental discharge of water is covered up to $25,000 per occurrence."
    assert fixed(text, home) == (text[:-1] + " [2].", "quoted")


def test_a_correction_linking_a_source_cites_it_with_or_without_the_fragment():
    slack = f"It's 5 days, see <{WIKI}/hr/vacation-leave#carryover-and-payout|Vacation Leave>"
    assert fixed(slack) == (slack + " [4]", "linked")
    bare = f"No notice is needed: {WIKI}/hr/bereavement-leave#notice-rules-for-bereavement-leave."
    assert fixed(bare) == (bare[:-1] + " [3].", "linked")
    page = f"Read <{WIKI}/hr/bereavement-leave/> again."  # the page: its best-ranked chunk
    assert fixed(page) == (f"Read <{WIKI}/hr/bereavement-leave/> again [2].", "linked")
    assert fixed(f"See {WIKI}/hr/parental-leave for that.")[1] == "uncited"  # a page that was not retrieved


def test_a_link_beats_a_quote_beats_a_name():
    link = f"Not the Sick Leave page: {WIKI}/hr/vacation-leave#carryover-and-payout"
    assert fixed(link) == (link + " [4]", "linked")
    quote = "Not on the Sick Leave page: tell your manager as soon as practical, a short message is enough."
    assert fixed(quote) == (quote[:-1] + " [3].", "quoted")


def test_a_correction_naming_nothing_cites_the_source_it_paraphrases():
    text = "Full-timers get ten sick days a year, all credited up front on January 1."
    assert fixed(text) == (text[:-1] + " [1].", "similar")
    text = "Your account unlocks by itself after 30 minutes, or use KeyReset to unlock it right away."
    assert fixed(text, IT) == (text[:-1] + " [2].", "similar")


def test_a_correction_like_no_source_cites_nothing_not_what_the_bot_cited():
    text = "The cafeteria on floor 2 closes at 3pm on Fridays, the coffee machine stays on."
    assert fixed(text) == (text, "uncited")
    assert fixed("No, 3 days.") == ("No, 3 days.", "uncited")  # too few words to judge
    corrected = LoggedAnswer(10, prompt(n_sources=5), HR, "The cafeteria closes at 5pm [1].", [1], "answered")
    built = build_pairs([corrected], [correction(10, text)])  # the default: no copies either
    assert by_kind(built.pairs) == {"correction": [(text, "The cafeteria closes at 5pm [1].")]}  # no distractors
    assert built.stats["corrections_uncited"] == 1 and built.stats["corrections"] == 1
    assert built.stats["reordered"] == 0  # it cites no source to move


def test_the_similarity_threshold_separates_paraphrases_from_other_topics():
    """Corrections for the sample wiki: a paraphrase shares most of its content words with its chunk only."""
    paraphrases = [
        ("You can carry over up to five unused vacation days, but they must be used by the end of March.", HR, 4),
        ("A note from your doctor is only needed after more than three consecutive working days off.", HR, 5),
        ("Passwords expire every 180 days and you can't reuse your last ten.", IT, 1),
        ("Monitors and docks come from the same hardware request form, only your manager approves them.", IT, 3),
    ]
    for text, sources, right in paraphrases:
        scores = {int(s["n"]): similarity(text, s) for s in sources}
        assert scores.pop(right) >= SIMILARITY_THRESHOLD > max(scores.values()), text
        assert fixed(text, sources) == (text[:-1] + f" [{right}].", "similar")
    elsewhere = [
        ("Parking in the garage costs five dollars a day, ask facilities for a monthly pass.", HR),
        ("The holiday party moved to the Harbor Room on the fourth floor this year.", HR),
        ("The new printer on floor 3 needs a badge swipe before it prints anything.", IT),
        ("Guest wifi passwords change every Monday, reception has the new one.", IT),
    ]
    for text, sources in elsewhere:
        assert max(similarity(text, s) for s in sources) < SIMILARITY_THRESHOLD, text
        assert fixed(text, sources) == (text, "uncited")


def test_a_downvoted_answer_with_a_correction_makes_one_pair_per_rejected_answer():
    a = answer(10, "Three days [2].")
    built = in_logged_order([a], [vote(10, "U1", -1), correction(10, "Five days.", source_n=1)])
    assert by_kind(built.pairs) == {
        "correction": [("Five days [1].", "Three days [2].")],
        "distractor": [("Five days [1].", "Five days [2]."), ("Five days [1].", "Five days [3]."),
                       ("Five days [1].", copied(1))],
    }


def test_the_latest_correction_wins_and_empty_ones_are_ignored():
    a = answer(10, "Three days [2].")
    first, latest = correction(10, "Four days [1].", user="U1"), correction(10, "Five days [3].", user="U2")
    built = in_logged_order([a], [latest, first, correction(10, "   ")], max_distractors=0)
    assert by_kind(built.pairs) == {"correction": [("Five days [3].", "Three days [2].")],
                                    "distractor": [("Five days [3].", copied(3))]}
    assert built.stats["corrections"] == 1 and built.stats["corrections_superseded"] == 1
    assert all("Four" not in p.chosen + p.rejected for p in built.pairs)  # the earlier text is not used


def test_an_earlier_correction_still_rejects_the_answer_it_corrected():
    liked, corrected = answer(5, "Five days [2]."), answer(7, "Two days [3].", [3])
    old, new = correction(7, "Four days [1]."), correction(5, "Six days [4].")
    built = in_logged_order([liked, corrected], [vote(5, "U1", 1), old, new], max_distractors=0)
    assert by_kind(built.pairs) == {
        "correction": [("Six days [4].", "Five days [2]."), ("Six days [4].", "Two days [3].")],
        "distractor": [("Six days [4].", copied(4))],
    }
    assert old.feedback_id in built.pairs[1].feedback_ids


def test_comments_make_no_pairs():
    built = build_pairs([answer(10)], [FeedbackItem(next(_ids), 10, "U1", "comment", None, "Thanks!")])
    assert built.pairs == [] and built.stats["comments"] == 1 and built.feedback_ids == ()


def test_answers_to_the_same_prompt_are_compared_and_identical_texts_pooled():
    good, bad, bad_again = answer(5, "Five days [2]."), answer(7, "Two days [3].", [3]), answer(9, "Two days [3].", [3])
    other = answer(6, "Five days [2].", question="Something else?")
    feedback = [vote(5, "U1", 1), vote(7, "U1", -1), vote(9, "U2", -1), vote(9, "U3", 1), vote(6, "U1", -1)]
    built = in_logged_order([bad_again, good, other, bad], feedback, max_distractors=1)
    assert [(p.interaction_id, p.kind, p.chosen, p.rejected) for p in built.pairs] == [
        (5, "rating", "Five days [2].", "Two days [3]."),  # 7 and 9 pooled: net -1
        (5, "distractor", "Five days [2].", "Five days [1]."),
    ]
    assert set(built.interaction_ids) == {5, 7, 9}


def test_a_pair_found_twice_is_kept_once_with_all_its_feedback():
    good, wrong_source = answer(5, "Five days [2]."), answer(7, "Five days [1].", [1])
    built = in_logged_order([good, wrong_source], [vote(5, "U1", 1), vote(7, "U2", -1)])
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


# Choosing, not position: copies of each pair with the prompt's sources in another order.

def logged_prompt(question: str, sources: list[dict[str, object]]) -> list[dict[str, str]]:
    """A prompt built by the bot itself, with a thread before it."""
    listed = [Source(**s) for s in sources]  # type: ignore[arg-type]
    thread = [Turn("Do we get sick days?", "Yes, see [1].")]
    return build_messages(question, listed, thread, company="Harborline")


def numbered_urls(prompt: list[dict[str, str]]) -> dict[int, str]:
    """Source number -> URL, read back from the prompt the way the answer checks read it."""
    headers, _ = prompt_sources(prompt[-1]["content"])
    return {int(h[1 : h.index("]")]): url.removeprefix("URL: ") for h, url in zip(headers[::2], headers[1::2])}


def cited_urls(text: str, prompt: list[dict[str, str]]) -> list[str]:
    urls = numbered_urls(prompt)
    return [urls[n] for n in cited_numbers(text)]


def block_and_rest(prompt: list[dict[str, str]]) -> tuple[str, list[dict[str, str]], str]:
    """(the source block, the messages before the last, the last message without its source block)."""
    content = prompt[-1]["content"]
    start, end = len("Sources:\n\n"), content.rindex("\n\nQuestion: ")
    return content[start:end], prompt[:-1], content[:start] + content[end:]


def test_a_correction_pair_gets_a_copy_whose_sources_are_in_another_order():
    question = "How many sick days do I get?"
    bot = "You get five sick days [4], carried over like vacation [1, 4][2]."
    corrected = LoggedAnswer(10, logged_prompt(question, HR), HR, bot, [4, 1, 2], "answered")
    fix = correction(10, "Ten sick days a year, all on January 1 [1].")
    built = build_pairs([corrected], [fix], max_distractors=1)
    originals = [p for p in built.pairs if p.prompt == corrected.prompt_messages]
    copies = [p for p in built.pairs if p.prompt != corrected.prompt_messages]
    kinds = ["correction", "distractor", "distractor", "correction", "distractor"]  # the last two: bot's own words
    assert [p.kind for p in originals] == [p.kind for p in copies] == kinds
    assert built.stats["reordered"] == 5 and len(built.pairs) == 10 and built.stats["recited"] == 1
    assert len({repr(c.prompt) for c in copies}) == 1  # one order per chosen source and prompt

    for original, copy in zip(originals, copies):
        assert copy.interaction_id == original.interaction_id == 10 and copy.feedback_ids == original.feedback_ids
        assert split_of(copy.interaction_id, 0.5) == split_of(original.interaction_id, 0.5)  # the same split
        # only the source block of the last message changes: system prompt, thread and question as logged
        block, before, rest = block_and_rest(copy.prompt)
        logged_block, logged_before, logged_rest = block_and_rest(original.prompt)
        assert (before, rest) == (logged_before, logged_rest) and block != logged_block
        assert sorted(block.split("\n\n")) != sorted(logged_block.split("\n\n"))  # renumbered, not just moved
        _, texts = prompt_sources(copy.prompt[-1]["content"])
        assert sorted(texts) == sorted(str(s["text"]) for s in HR)  # the same sources, each once
        assert list(numbered_urls(copy.prompt)) == [1, 2, 3, 4, 5]
        # the chosen answer's source is not [1] any more, and its number still points at it
        assert cited_numbers(copy.chosen) != [1]
        assert cited_urls(copy.chosen, copy.prompt) == cited_urls(original.chosen, original.prompt) == [HR[0]["url"]]
        # the rejected answer's citations follow their sources too
        assert cited_urls(copy.rejected, copy.prompt) == cited_urls(original.rejected, original.prompt)
        assert copy.rejected != original.rejected

    # a run of citations is renumbered number by number, the answer's words as they were
    urls = numbered_urls(copies[0].prompt)
    new = {n: next(m for m, url in urls.items() if url == HR[n - 1]["url"]) for n in (1, 2, 4)}
    assert copies[0].rejected == (
        f"You get five sick days [{new[4]}], carried over like vacation [{new[1]}, {new[4]}][{new[2]}].")


def test_an_unpermuted_rebuild_is_the_logged_prompt():
    prompt = logged_prompt("How many sick days do I get?", HR)
    listed = listed_sources(prompt, HR)
    assert listed is not None and [s.text for s in listed] == [s["text"] for s in HR]
    block, _, _ = block_and_rest(prompt)
    assert format_sources(listed) == block
    without_text = [{k: v for k, v in s.items() if k != "text"} for s in HR]  # a snapshot's rated answers
    assert listed_sources(prompt, without_text) == listed
    pair = PreferencePair(1, prompt, "Ten days [1].", "Five days [4].", "correction", ())
    assert reorder(pair, listed, [1, 2, 3, 4, 5]) == pair
    # a prompt whose source block is not the logged sources' is not rebuilt: it gets no copies
    assert listed_sources(prompt, HR[:4]) is None and listed_sources(prompt, [HR[1], HR[0]]) is None
    assert listed_sources([{"role": "user", "content": "Question: how?"}], HR) is None
    odd = LoggedAnswer(10, [{"role": "user", "content": "Question: how?"}], HR, "Five days [4].", [4], "answered")
    assert build_pairs([odd], [correction(10, "Ten days [1].")]).stats["reordered"] == 0


def test_orders_move_the_first_cited_source_off_1_deterministically():
    for n_sources in (2, 3, 5):
        for seed in range(12):
            for first in range(1, n_sources + 1):
                orders = source_orders_for(f"Yes [{first}], and [1].", n_sources, seed, count=10)
                assert len(orders) == n_sources - 1 - (first != 1)  # every position but 1 and its own
                assert len(set(orders)) == len(orders)
                for order in orders:
                    assert sorted(order) == list(range(1, n_sources + 1))
                    assert order.index(first) + 1 not in (1, first)
                    assert [n for n in order if n != first] == [n for n in range(1, n_sources + 1) if n != first]
    assert source_orders_for("Yes [1].", 5, 7, 1) == source_orders_for("Yes [1].", 5, 7, 2)[:1]
    assert source_orders_for("Yes.", 5, 7, 1) == [] and source_orders_for("Yes [9].", 5, 7, 1) == []
    assert source_orders_for("Yes [2].", 2, 7, 1) == []  # its only other order puts it first


def test_renumbering_citations_follows_each_number():
    new = {1: 3, 3: 1, 2: 2}
    assert renumber_citations("A [1]. B [1, 3]. C [1][3]. D [3,1]. E [9]. F [2024].", new) == (
        "A [3]. B [3, 1]. C [3][1]. D [1,3]. E [9]. F [2024].")


def test_single_sources_and_uncited_chosen_answers_get_no_copy():
    good, bad = answer(5, "Five days [1].", [1], n_sources=1), answer(7, "Two days [1].", [1], n_sources=1)
    built = build_pairs([good, bad], [vote(5, "U1", 1), vote(7, "U2", -1)])
    assert by_kind(built.pairs) == {"rating": [("Five days [1].", "Two days [1].")]}
    assert built.stats["reordered"] == 0
    plain, wrong = answer(8, "Five days.", [], question="b"), answer(9, "Two days [1].", [1], question="b")
    built = build_pairs([plain, wrong], [vote(8, "U1", 1), vote(9, "U2", -1)])
    assert by_kind(built.pairs) == {"rating": [("Five days.", "Two days [1].")]}
    assert built.stats["reordered"] == 0


def test_the_number_of_orders_is_a_parameter_and_the_output_deterministic():
    a = answer(10, "Three days [2].")
    feedback = [correction(10, "Five days [1].")]
    assert build_pairs([a], feedback, max_distractors=0, source_orders=0).stats["reordered"] == 0
    one = build_pairs([a], feedback, max_distractors=0)  # the correction against the answer and the source's block
    assert len(one.pairs) == 4 and one.stats["reordered"] == 2 * DEFAULT_SOURCE_ORDERS == 2
    three = build_pairs([a], feedback, max_distractors=0, source_orders=5)
    assert three.stats["reordered"] == 6 and len({repr(p.prompt) for p in three.pairs}) == 4  # [1] to 2, 3 or 4
    assert three.pairs[:2] == one.pairs[:2] and build_pairs([a], feedback, max_distractors=0, source_orders=5) == three
    assert {p.chosen for p in three.pairs} == {"Five days [1].", "Five days [2].", "Five days [3].", "Five days [4]."}
    assert set(three.interaction_ids) == {10}


def test_a_correction_is_cited_in_the_answers_voice_without_talking_to_the_bot():
    said = "Actually, that's not right. You get 10 sick days a year, all on January 1. It's on the Sick Leave page."
    assert fixed(said) == ("You get 10 sick days a year, all on January 1 [1].", "named")  # found by the page named
    assert fixed("No. See the Doctor's Note section.", source_n=5) == ("No. See the Doctor's Note section [5].",
                                                                        "source_n")  # nothing else: kept whole
    kept = "It is 3 days per the Doctor's Note section."  # a pointer with a fact is an answer
    assert fixed(f"Wrong! {kept}") == ("It is 3 days per the Doctor's Note section [5].", "named")


def test_the_answers_a_correction_rejects_are_preferred_in_their_own_words_citing_its_source():
    question = "How many sick days do I get?"
    own = "Employees get sick days credited at the start of the year [4]."
    copy = HR[3]["text"].replace("\n", " ") + " [4]"  # the bot copied its source: nothing to cite in its words
    uncovered = "The wiki does not cover how many sick days you get."
    logged = [LoggedAnswer(i, logged_prompt(question, HR), HR, text, cited_numbers(text), "answered")
              for i, text in ((10, own), (11, copy), (12, uncovered), (13, "Yes [2]."))]  # fmt: skip
    feedback = [correction(10, "Ten sick days a year, all on January 1. It's on the Sick Leave page."),
                *(vote(i, "U1", -1) for i in (11, 12, 13))]  # fmt: skip
    built = in_logged_order(logged, feedback, max_distractors=1)
    mine = "Employees get sick days credited at the start of the year [1]."
    assert [(p.kind, p.chosen, p.rejected) for p in built.pairs if p.chosen == mine] == [
        ("correction", mine, own), ("distractor", mine, "Employees get sick days credited at the start of the year [2].")]
    assert built.stats["recited"] == 1  # not the copy, not "not covered", not a bare "Yes"
    block = format_sources([Source(0, 0, "", str(HR[0]["title"]), str(HR[0]["section"]), str(HR[0]["url"]),
                                   str(HR[0]["text"]), 0.0, n=1)])  # fmt: skip
    assert ("distractor", "Ten sick days a year, all on January 1 [1].", block) in [
        (p.kind, p.chosen, p.rejected) for p in built.pairs]
    uncited = in_logged_order(logged, [correction(10, "Nobody knows, ask around the office kitchen.")])
    assert uncited.stats["recited"] == 0 and all(p.rejected != block for p in uncited.pairs)

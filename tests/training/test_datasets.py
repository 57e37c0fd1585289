"""training.datasets and `wikibot pairs`: snapshots built from real interaction and feedback rows.

The tests share the module's database and run in file order: the first one sees it empty.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from core.answer_log import WITHHELD_STATS, AnswerLog, FeedbackItem, LoggedAnswer
from core.config import Settings
from core.db import Database
from training import cli
from training.datasets import (
    DatasetNotFound, DatasetSnapshot, PersonCap, build_snapshot, export_jsonl, latest_snapshot,
    forget, load_pairs, prune_snapshots,
)
from training.pairs import STATS

SOURCES = [
    {"n": n, "chunk_id": n, "page_id": n, "space": "hr", "title": f"Page {n}", "section": "",
     "url": f"https://w/{n}", "text": f"text {n}", "score": 1 / n}
    for n in range(1, 5)
]


def messages(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are wikibot."}, {"role": "user", "content": f"Question: {question}"}]


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with Database.open(settings) as opened:
        yield opened


@pytest.fixture
def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wikibot")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


async def ask(
    db: Database, question: str, answer: str, cited: list[int], sources: list[dict[str, Any]] = SOURCES
) -> int:
    """Log an answer the way the bot does (core.answer_log)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO interactions (source, channel_id, user_id, question, prompt_messages, sources, cited,"
            " answer, status) VALUES ('slack', 'C1', 'U0', %s, %s, %s, %s, %s, 'answered') RETURNING id",
            (question, Jsonb(messages(question)), Jsonb(sources), cited, answer),
        )
        return (await cur.fetchone())[0]


async def give(
    db: Database, interaction_id: int, user: str, kind: str, confirmed: bool = True, **values: Any
) -> int:
    """Record feedback the way the feedback listeners do (a correction confirmed by its author unless told);
    return its id."""
    row = {"via": "reply", "value": None, "text": None, "source_n": None, "message_ts": None, "event_ts": None,
           "review_reasons": []}  # fmt: skip
    row |= values | {"interaction_id": interaction_id, "user_id": user, "kind": kind}
    row["confirmed_by"] = user if confirmed and kind == "correction" else None
    async with db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO feedback (interaction_id, user_id, kind, via, value, text, source_n, channel_id,"
            " message_ts, event_ts, review_reasons, confirmed_by, confirmed_at) VALUES (%(interaction_id)s,"
            " %(user_id)s, %(kind)s, %(via)s, %(value)s, %(text)s, %(source_n)s, 'C1', %(message_ts)s, %(event_ts)s,"
            " %(review_reasons)s, %(confirmed_by)s, CASE WHEN %(confirmed_by)s::text IS NOT NULL THEN now() END)"
            " RETURNING id",
            row,
        )
        return (await cur.fetchone())[0]


async def review(db: Database, feedback_id: int, verdict: str) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE feedback SET review_verdict = %s, reviewed_by = 'UREVIEW', reviewed_at = now() WHERE id = %s",
            (verdict, feedback_id),
        )


async def test_export_before_any_snapshot_says_to_build_one(db: Database, settings: Settings, parser, tmp_path):
    assert await latest_snapshot(db) is None
    args = parser.parse_args(["pairs", "export", str(tmp_path / "x.jsonl")])
    with pytest.raises(DatasetNotFound, match="wikibot pairs build"):
        await args.handler(args, settings)
    assert not (tmp_path / "x.jsonl").exists()


async def test_snapshots_are_versioned_and_record_what_went_in(db: Database):
    liked = await ask(db, "How many days of bereavement leave?", "Five days [2].", [2])
    corrected = await ask(db, "Who approves a laptop?", "Your manager [1].", [1])
    disliked = await ask(db, "What is the VPN address?", "vpn.example [3].", [3])
    up = await give(db, liked, "U1", "rating", value=1, via="reaction:+1", event_ts=1)
    fix = await give(db, corrected, "U2", "correction", text="IT approves laptops.", source_n=4, message_ts="9.1")
    await give(db, disliked, "U1", "rating", value=1, via="reaction:+1", event_ts=1)
    await give(db, disliked, "U1", "rating", value=-1, via="button", event_ts=2)  # changed their mind: -1 stands
    await give(db, disliked, "U2", "comment", text="the address moved", message_ts="9.2")

    first = await build_snapshot(db, heldout_fraction=0.5)
    assert first.previous_id is None and first.new_pairs == first.pairs == 5  # 1 correction, 2 x 2 distractors
    assert first.splits["train"]["correction"] + first.splits["heldout"]["correction"] == 1
    assert (first.stats["rated_up"], first.stats["rated_down"], first.stats["rejected_unpaired"]) == (1, 1, 1)
    assert first.stats["comments"] == 1
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT interaction_ids, feedback_ids, settings FROM datasets WHERE id = %s", (first.id,)
        )
        assert await cur.fetchone() == ([liked, corrected], [up, fix], {"heldout_fraction": 0.5, "max_distractors": 2})

    pairs = await load_pairs(db, first.id, "train") + await load_pairs(db, first.id, "heldout")
    [corrected_pair] = [p for p in pairs if p["rejected"][0]["content"] == "Your manager [1]."]
    assert corrected_pair == {
        "prompt": messages("Who approves a laptop?"),
        "chosen": [{"role": "assistant", "content": "IT approves laptops [4]."}],
        "rejected": [{"role": "assistant", "content": "Your manager [1]."}],
    }

    untrained = await build_snapshot(db, heldout_fraction=0.5)
    assert (untrained.previous_id, untrained.new_pairs) == (None, 5), "nothing trained yet: every pair is new"
    async with db.connection() as conn:  # a training run used the first snapshot
        await conn.execute(
            "INSERT INTO adapters (version, name, path, dataset_id, status) VALUES (1, 'wiki-v1', '/a', %s, 'rejected')",
            (first.id,),
        )
    again = await build_snapshot(db, heldout_fraction=0.5)
    assert (again.id, again.previous_id, again.new_pairs, again.pairs) == (first.id + 2, first.id, 0, 5)
    assert await latest_snapshot(db) == again

    await give(db, disliked, "U3", "rating", value=1, via="reaction:+1", event_ts=3)
    await give(db, disliked, "U4", "rating", value=1, via="reaction:+1", event_ts=3)  # net +1 now
    third = await build_snapshot(db, heldout_fraction=0.5)
    assert (third.new_pairs, third.pairs) == (2, 7)


async def test_a_question_asked_again_is_one_prompt_in_one_split(db: Database):
    first = await ask(db, "Is the office open on Sunday?", "Yes [1].", [1])
    second = await ask(db, "Is the office open on Sunday?", "No [2].", [2])
    await give(db, first, "U1", "rating", value=-1, via="button", event_ts=1)
    await give(db, second, "U1", "rating", value=1, via="button", event_ts=1)
    snapshot = await build_snapshot(db, heldout_fraction=0.5)
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT interaction_id, split, kind FROM dataset_pairs WHERE dataset_id = %s AND prompt = %s",
            (snapshot.id, Jsonb(messages("Is the office open on Sunday?"))),
        )
        rows = await cur.fetchall()
    assert {(i, k) for i, _, k in rows} == {(first, "rating"), (first, "distractor")}
    assert len({split for _, split, _ in rows}) == 1


async def test_retracted_ratings_and_deleted_corrections_are_not_used(db: Database):
    answered = await ask(db, "Is parking free?", "Yes [1].", [1])
    rating = await give(db, answered, "U1", "rating", value=1, via="reaction:+1", event_ts=1)
    fix = await give(db, answered, "U2", "correction", text="No, 5 a day.", message_ts="7.1")
    async with db.connection() as conn:
        await conn.execute("UPDATE feedback SET retracted_at = now() WHERE id = ANY(%s)", ([rating, fix],))
    snapshot = await build_snapshot(db, heldout_fraction=0.5)
    async with db.connection() as conn:
        cur = await conn.execute("SELECT interaction_ids, feedback_ids FROM datasets WHERE id = %s", (snapshot.id,))
        interaction_ids, feedback_ids = await cur.fetchone()
        cur = await conn.execute(
            "SELECT count(*) FROM dataset_pairs WHERE dataset_id = %s AND interaction_id = %s", (snapshot.id, answered)
        )
        assert (await cur.fetchone())[0] == 0
    assert answered not in interaction_ids and rating not in feedback_ids and fix not in feedback_ids


async def test_only_confirmed_corrections_and_reviewed_ones_that_needed_it_are_used(db: Database):
    before = await build_snapshot(db, heldout_fraction=0.5)
    fixes = {}
    for name in ("unconfirmed", "confirmed", "linked", "approved", "rejected", "liked_by_others", "liked_by_self"):
        answered = await ask(db, f"Which form for {name}?", f"Form A for {name} [1].", [1])
        if name.startswith("liked"):
            await give(db, answered, "U2", "rating", value=1, via="reaction:+1", event_ts=1)
        if name == "liked_by_others":
            await give(db, answered, "U3", "rating", value=1, via="reaction:+1", event_ts=1)
        reasons = ["external_link"] if name in ("linked", "approved", "rejected") else []
        fixes[name] = await give(db, answered, "U2", "correction", confirmed=name != "unconfirmed",
                                 text=f"Form B for {name}, see Page 2.", review_reasons=reasons)
    await review(db, fixes["approved"], "approved")
    await review(db, fixes["rejected"], "rejected")

    after = await build_snapshot(db, heldout_fraction=0.5)
    async with db.connection() as conn:
        cur = await conn.execute("SELECT feedback_ids FROM datasets WHERE id = %s", (after.id,))
        (used,) = await cur.fetchone()
    assert {name for name, fix in fixes.items() if fix in used} == {"confirmed", "approved", "liked_by_self"}
    withheld = {key: after.stats[key] - before.stats[key] for key in WITHHELD_STATS}
    assert withheld == {"corrections_unconfirmed": 1, "corrections_awaiting_review": 2, "corrections_rejected": 1}


async def test_the_cli_builds_and_exports_trl_jsonl(db: Database, settings: Settings, parser, tmp_path, capsys):
    args = parser.parse_args(["pairs", "build", "--json"])
    assert await args.handler(args, settings) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["pairs"] == sum(sum(k.values()) for k in built["splits"].values())

    out = tmp_path / "train.jsonl"
    args = parser.parse_args(["pairs", "export", str(out)])
    assert await args.handler(args, settings) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == sum(built["splits"]["train"].values()) > 0
    assert all(set(line) == {"prompt", "chosen", "rejected"} for line in lines)
    assert lines == await load_pairs(db, built["id"], "train")
    heldout = sum(built["splits"]["heldout"].values())
    assert await export_jsonl(db, built["id"], tmp_path / "h.jsonl", "heldout") == heldout

    args = parser.parse_args(["pairs", "build"])
    assert await args.handler(args, settings) == 0
    expected = f"{built['new_pairs']} new since dataset {built['previous_id']}"  # the last trained adapter's
    assert expected in capsys.readouterr().out

    args = parser.parse_args(["pairs", "export", str(out), "--dataset", "9999", "--split", "heldout"])
    with pytest.raises(DatasetNotFound, match="no dataset 9999"):
        await args.handler(args, settings)


async def test_old_snapshots_go_except_those_adapters_were_trained_on(db: Database):
    answered = await ask(db, "Where is the badge office?", "Floor 2 [1].", [1])
    await give(db, answered, "U1", "correction", text="Floor 3 [1].", message_ts="5.1")
    trained_on, dropped, recent, newest = [await build_snapshot(db, heldout_fraction=0.5) for _ in range(4)]
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO adapters (version, name, path, dataset_id, status)"
            " VALUES (900, 'wiki-v900', '/a', %s, 'active')",
            (trained_on.id,),
        )
    assert await prune_snapshots(db, keep=2) >= 1
    async with db.connection() as conn:
        cur = await conn.execute("SELECT id FROM datasets WHERE id >= %s ORDER BY id", (trained_on.id,))
        assert [row[0] for row in await cur.fetchall()] == [trained_on.id, recent.id, newest.id]
        cur = await conn.execute("SELECT count(*) FROM dataset_pairs WHERE dataset_id = %s", (dropped.id,))
        assert (await cur.fetchone())[0] == 0, "its pairs went with it"
    assert len(await load_pairs(db, trained_on.id, "train") + await load_pairs(db, trained_on.id, "heldout")) > 0
    assert await prune_snapshots(db, keep=2) == 0, "nothing more to delete"


async def test_a_purge_takes_feedback_out_of_pairs_built_before_pairs_recorded_it(db: Database):
    first = await ask(db, "Where is the Lisbon office?", "In Porto [1].", [1])
    again = await ask(db, "Where is the Lisbon office?", "In Porto [1].", [1])  # one prompt: its id is `first`
    fix = "The Lisbon office is on Rua Augusta [2]."
    await give(db, again, "U7", "correction", text=fix, message_ts="purge.1")
    other = await ask(db, "Who runs payroll?", "Ana [1].", [1])
    await give(db, other, "U8", "correction", text="Payroll is run by Rui [2].", message_ts="purge.2")
    snapshot = await build_snapshot(db, heldout_fraction=0.5)
    async with db.connection() as conn:  # as built before migration 0006: pairs name no feedback
        await conn.execute("UPDATE dataset_pairs SET feedback_ids = NULL WHERE dataset_id = %s", (snapshot.id,))
        cur = await conn.execute(
            "SELECT interaction_id, count(*) FROM dataset_pairs WHERE dataset_id = %s GROUP BY 1", (snapshot.id,)
        )
        made = dict(await cur.fetchall())
    assert made[first] > 0 and made[other] > 0

    purged = await AnswerLog(db).purge_user("U7", forget)
    assert (purged.feedback, purged.pairs) == (1, made[first]) and snapshot.id in purged.datasets
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT interaction_id, count(*) FROM dataset_pairs WHERE dataset_id = %s GROUP BY 1", (snapshot.id,)
        )
        assert dict(await cur.fetchall()) == {k: v for k, v in made.items() if k != first}, "others' pairs stay"


async def test_a_correction_quoting_a_source_cites_it(db: Database):
    """The snapshot reads the sources' text for corrected answers: quotes and paraphrases need it."""
    sources = [
        {**SOURCES[0], "title": "Sick Leave", "text": "Up to 5 unused sick days carry over to the next year, with a"
         " maximum balance of 15 days."},
        {**SOURCES[1], "title": "Vacation Leave", "text": "You may carry over up to 5 unused vacation days into the"
         " next year."},
    ]
    answered = await ask(db, "Do unused vacation days carry over?", "Yes, up to 15 days [1].", [1], sources)
    fix = "No: you may carry over up to 5 unused vacation days."
    await give(db, answered, "U2", "correction", text=fix, message_ts="8.1")
    snapshot = await build_snapshot(db, heldout_fraction=0.5)
    assert snapshot.stats["corrections_quoted"] >= 1
    pairs = await load_pairs(db, snapshot.id, "train") + await load_pairs(db, snapshot.id, "heldout")
    chosen = {p["chosen"][0]["content"] for p in pairs if p["rejected"][0]["content"] == "Yes, up to 15 days [1]."}
    assert chosen == {"No: you may carry over up to 5 unused vacation days [2]."}


def test_the_summary_says_how_corrections_found_their_source_and_what_the_rules_added():
    stats = {key: 0 for key in STATS} | {"corrections": 3, "corrections_named": 2, "corrections_source_n": 1,
                                          "recited": 2, "reordered": 7}  # fmt: skip
    snapshot = DatasetSnapshot(4, datetime.now(UTC), {}, {"train": {"correction": 5}}, stats, 5, None)
    text = cli.summary(snapshot)
    assert "corrections cite by: source_n 1, named 2;" in text
    assert "2 answers recited in their own words; 7 pairs copied with their sources in another order" in text
    older = DatasetSnapshot(3, datetime.now(UTC), {}, {"train": {}}, {k: 0 for k in STATS if k != "recited"}, 0, 1)
    assert "corrections cite by: none; 0 answers recited" in cli.summary(older)  # stored before the rule existed


def test_one_person_shapes_at_most_their_share_of_the_prompts_their_earliest():
    answers = [LoggedAnswer(i, [{"role": "user", "content": f"Question {i % 10}"}], SOURCES, "A [1].", [1], "answered")
               for i in range(1, 21)]  # 20 answers to 10 prompts: answers i and i + 10 share one
    flood = [FeedbackItem(i, i, "UFLOOD", "correction", text=f"Fix {i}.") for i in range(1, 11)]
    others = [FeedbackItem(100 + i, i, f"U{i}", "rating", value=1) for i in (1, 2)]
    votes_again = [FeedbackItem(200, 11, "UFLOOD", "rating", value=-1), FeedbackItem(201, 12, "UFLOOD", "comment")]
    kept, left_out = PersonCap(share=0.2, min_prompts=1).apply(answers, flood + others + votes_again)
    assert [f.feedback_id for f in kept if f.user_id == "UFLOOD"] == [1, 2, 200, 201], (
        "2 of 10 prompts: their first two, and more feedback on those; a comment weighs nothing")
    assert {f.user_id for f in kept} == {"UFLOOD", "U1", "U2"} and left_out == 8
    kept, left_out = PersonCap(share=0.2, min_prompts=5).apply(answers, flood)
    assert len(kept) == 5 and left_out == 5, "never fewer than min_prompts"
    assert PersonCap(share=1.0, min_prompts=1).apply(answers, flood) == (flood, 0)


async def test_a_snapshot_caps_how_much_one_person_shapes_it(db: Database):
    flooded = [await ask(db, f"Flooded question {i}?", f"Answer {i} [1].", [1]) for i in range(6)]
    fixes = [await give(db, i, "UFLOOD", "correction", text=f"Form {n} is right, Page 2.")
             for n, i in enumerate(flooded)]
    snapshot = await build_snapshot(db, heldout_fraction=0.5, cap=PersonCap(share=0.01, min_prompts=2))
    async with db.connection() as conn:
        cur = await conn.execute("SELECT feedback_ids, settings FROM datasets WHERE id = %s", (snapshot.id,))
        used, settings = await cur.fetchone()
    assert [fix in used for fix in fixes] == [True, True, False, False, False, False]
    assert snapshot.stats["feedback_capped"] >= 4
    assert settings | {"heldout_fraction": 0} == {"heldout_fraction": 0, "max_distractors": 2,
                                                   "max_user_share": 0.01, "user_min_prompts": 2}


async def test_a_pair_budget_takes_one_pair_of_every_prompt_before_a_second_of_any_newest_first(db: Database):
    snapshot = await build_snapshot(db, heldout_fraction=0.01)
    everything = await load_pairs(db, snapshot.id, "train")

    def prompt_of(pair: dict[str, Any]) -> str:
        return pair["prompt"][-1]["content"]

    prompts = list(dict.fromkeys(map(prompt_of, everything)))  # the snapshot's order: oldest prompt first
    assert len(everything) > len(prompts) > 3, "prompts with several pairs"
    newest = await load_pairs(db, snapshot.id, "train", limit=3)
    assert [prompt_of(p) for p in newest] == prompts[-3:]
    one_each = await load_pairs(db, snapshot.id, "train", limit=len(prompts))
    assert sorted(map(prompt_of, one_each)) == sorted(prompts)
    positions = [everything.index(p) for p in one_each]
    assert positions == sorted(positions), "in the snapshot's order"
    assert await load_pairs(db, snapshot.id, "train", limit=10_000) == everything

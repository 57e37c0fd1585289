"""Versioned snapshots of the preference pairs: every SQL statement on `datasets` and `dataset_pairs` (migrations
0004, 0006).

A snapshot reads the answer log and the feedback standing now (each user's effective rating; corrections their
author confirmed and, where the review rule asks, a reviewer approved; comments; nothing retracted), builds pairs
with `training.pairs`, and stores them with the ids of exactly the answers and feedback that went in. Snapshots
are never changed afterwards: a model names the one it used.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from core.answer_log import AnswerLog, FeedbackItem, LoggedAnswer
from core.config import Settings
from core.db import Database
from core.registry import AdapterRegistry
from training.pairs import (
    DEFAULT_MAX_DISTRACTORS,
    PAIR_KINDS,
    SPLITS,
    PreferencePair,
    build_pairs,
    split_of,
    trl_record,
)

log = logging.getLogger(__name__)

SNAPSHOT_LOCK = 72_650_101  # pg_advisory_xact_lock key: one snapshot build at a time

WEIGHING_KINDS = ("rating", "correction")  # the feedback PersonCap counts: it makes pairs
# Snapshots past the newest `keep` go, except those an adapter was trained on (what it learnt from stays known).
_PRUNE = """
DELETE FROM datasets
WHERE id NOT IN (SELECT id FROM datasets ORDER BY id DESC LIMIT %(keep)s)
    AND NOT id = ANY(%(trained)s::bigint[])
"""
_NEW_PAIRS = """
SELECT count(*) FROM dataset_pairs p WHERE p.dataset_id = %(new)s AND NOT EXISTS (
    SELECT 1 FROM dataset_pairs q WHERE q.dataset_id = %(old)s AND q.interaction_id = p.interaction_id
    AND q.kind = p.kind AND q.chosen = p.chosen AND q.rejected = p.rejected)
"""
_SNAPSHOT = "SELECT id, created_at, settings, counts FROM datasets"
_LOAD_PAIRS = """
SELECT prompt, chosen, rejected FROM (
    SELECT prompt, chosen, rejected, position,
        row_number() OVER (PARTITION BY interaction_id ORDER BY md5(chosen || rejected), position) AS turn
    FROM dataset_pairs WHERE dataset_id = %(dataset)s AND split = %(split)s
    ORDER BY turn, interaction_id DESC LIMIT %(limit)s
) picked ORDER BY position
"""
# A person's data out of every snapshot: pairs of their prompts, pairs their feedback made (before pairs recorded
# their feedback: every pair of a prompt it was on, named by the prompt's id), pairs whose prompt holds one of their
# questions as an earlier turn of the thread. Run before their rows are deleted.
_FORGET = """
DELETE FROM dataset_pairs p
WHERE p.interaction_id = ANY(%(answers)s::bigint[]) OR p.feedback_ids && %(feedback)s::bigint[]
    OR (p.feedback_ids IS NULL AND p.interaction_id = ANY(%(prompts)s::bigint[]))
    OR EXISTS (SELECT 1 FROM unnest(%(turns)s::jsonb[]) t WHERE p.prompt @> t)
RETURNING dataset_id
"""
_HELD = """
SELECT id FROM datasets
WHERE id = ANY(%(touched)s::bigint[]) OR interaction_ids && %(answers)s::bigint[]
    OR feedback_ids && %(feedback)s::bigint[]
ORDER BY id
"""


@dataclass(frozen=True)
class Forgotten:
    """What taking a person's data out of the snapshots did."""

    pairs: int  # deleted
    datasets: list[int]  # the snapshots that held it (an adapter trained on one may have learnt it)


async def forget(
    conn: psycopg.AsyncConnection, answers: list[int], feedback: list[int], prompts: list[int], questions: list[str]
) -> Forgotten:
    """Delete from every snapshot the pairs made of a person's answers (`answers`: their questions' log ids), of
    their `feedback` (on `prompts`, by id), or holding one of their `questions` in an earlier turn of the prompt's
    thread; name the snapshots that held what they gave."""
    turns = [Jsonb([{"role": "user", "content": q}]) for q in questions]
    params = {"answers": answers, "feedback": feedback, "prompts": prompts, "turns": turns}
    cur = await conn.execute(_FORGET, params)
    deleted = [row[0] for row in await cur.fetchall()]
    cur = await conn.execute(_HELD, {**params, "touched": sorted(set(deleted))})
    return Forgotten(len(deleted), [row[0] for row in await cur.fetchall()])


@dataclass(frozen=True)
class PersonCap:
    """How much of a snapshot one person may shape: their votes and corrections count on at most
    max(`min_prompts`, `share` x the prompts with any) prompts, their earliest (so a snapshot does not churn as
    they add more); the rest of theirs is left out. Comments make no pairs and pass."""

    share: float
    min_prompts: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PersonCap:
        return cls(settings.train_max_user_share, settings.train_user_min_prompts)

    def apply(
        self, answers: Sequence[LoggedAnswer], feedback: Sequence[FeedbackItem]
    ) -> tuple[list[FeedbackItem], int]:
        """The feedback that stays, and how many items were left out."""
        prompt_of = {a.interaction_id: json.dumps(a.prompt_messages, sort_keys=True) for a in answers}
        weighs = [f for f in feedback if f.kind in WEIGHING_KINDS]
        limit = max(self.min_prompts, math.floor(self.share * len({prompt_of[f.interaction_id] for f in weighs})))
        shaped: dict[str, set[str]] = defaultdict(set)
        kept, left_out = [], 0
        for item in sorted(feedback, key=lambda f: f.feedback_id):
            if item.kind in WEIGHING_KINDS:
                prompt, theirs = prompt_of[item.interaction_id], shaped[item.user_id]
                if prompt not in theirs and len(theirs) >= limit:
                    left_out += 1
                    continue
                theirs.add(prompt)
            kept.append(item)
        return kept, left_out


class DatasetNotFound(ValueError):
    """No such snapshot (a user's error: the CLI prints it)."""


@dataclass(frozen=True)
class DatasetSnapshot:
    id: int  # the version
    created_at: datetime
    settings: dict[str, Any]
    splits: dict[str, dict[str, int]]  # pairs per split, per kind
    stats: dict[str, int]  # what the feedback gave (see training.pairs)
    new_pairs: int  # pairs the dataset of the last trained adapter did not have
    previous_id: int | None

    @property
    def pairs(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.splits.values())

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat(), "pairs": self.pairs}

    @classmethod
    def from_row(cls, row: tuple[int, datetime, dict[str, Any], dict[str, Any]]) -> DatasetSnapshot:
        id_, created_at, settings, counts = row  # counts: splits, stats, new_pairs, previous_id
        return cls(id_, created_at, settings, **counts)


async def build_snapshot(
    db: Database, heldout_fraction: float, max_distractors: int = DEFAULT_MAX_DISTRACTORS, cap: PersonCap | None = None
) -> DatasetSnapshot:
    """Build the pairs the feedback gives now and store them as a new snapshot (one person's weight in it capped
    by `cap`, if given)."""
    trained = await AdapterRegistry(db).trained_dataset_ids()
    # "new" counts against what the last training run saw, so slow feedback still adds up to a run
    previous_id = trained[0] if trained else None
    async with db.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SNAPSHOT_LOCK,))
        given = await AnswerLog(db).for_training(conn)
        feedback, capped = cap.apply(given.answers, given.feedback) if cap else (given.feedback, 0)
        built = build_pairs(given.answers, feedback, max_distractors)
        stats = {**built.stats, **given.withheld, "feedback_capped": capped}

        settings = {"heldout_fraction": heldout_fraction, "max_distractors": max_distractors}
        if cap:
            settings |= {"max_user_share": cap.share, "user_min_prompts": cap.min_prompts}
        cur = await conn.execute(
            "INSERT INTO datasets (settings, interaction_ids, feedback_ids) VALUES (%s, %s, %s)"
            " RETURNING id, created_at",
            (Jsonb(settings), list(built.interaction_ids), list(built.feedback_ids)),
        )
        dataset_id, created_at = await cur.fetchone()  # type: ignore[misc]
        splits = await _store_pairs(conn, dataset_id, built.pairs, heldout_fraction)
        new_pairs = len(built.pairs)
        if previous_id is not None:
            cur = await conn.execute(_NEW_PAIRS, {"new": dataset_id, "old": previous_id})
            (new_pairs,) = await cur.fetchone()  # type: ignore[misc]
        counts = {"splits": splits, "stats": stats, "new_pairs": new_pairs, "previous_id": previous_id}
        await conn.execute("UPDATE datasets SET counts = %s WHERE id = %s", (Jsonb(counts), dataset_id))
    return DatasetSnapshot(dataset_id, created_at, settings, **counts)


async def prune_snapshots(db: Database, keep: int) -> int:
    """Delete snapshots older than the newest `keep`, except those an adapter was trained on; return how many.

    Only training runs call it, holding the training lock: a run's snapshot is unprotected until its adapter
    row exists, so nothing else may prune meanwhile.
    """
    trained = await AdapterRegistry(db).trained_dataset_ids()
    async with db.connection() as conn:
        pruned = (await conn.execute(_PRUNE, {"keep": keep, "trained": trained})).rowcount
    if pruned:
        log.info("deleted %d old dataset snapshot(s), keeping the newest %d and those adapters were trained on",
                 pruned, keep)
    return pruned


async def _store_pairs(
    conn: psycopg.AsyncConnection, dataset_id: int, pairs: list[PreferencePair], fraction: float
) -> dict[str, dict[str, int]]:
    """COPY the pairs in, each in its prompt's split; return how many went to each split, per kind."""
    splits = {split: dict.fromkeys(PAIR_KINDS, 0) for split in SPLITS}
    cur = conn.cursor()
    columns = "dataset_id, position, interaction_id, split, kind, prompt, chosen, rejected, feedback_ids"
    async with cur.copy(f"COPY dataset_pairs ({columns}) FROM STDIN") as copy:
        for position, pair in enumerate(pairs):
            split = split_of(pair.interaction_id, fraction)
            splits[split][pair.kind] += 1
            prompt = Jsonb(pair.prompt)
            row = (dataset_id, position, pair.interaction_id, split, pair.kind, prompt, pair.chosen, pair.rejected,
                   list(pair.feedback_ids))
            await copy.write_row(row)
    return splits


async def latest_snapshot(db: Database) -> DatasetSnapshot | None:
    async with db.connection() as conn:
        cur = await conn.execute(f"{_SNAPSHOT} ORDER BY id DESC LIMIT 1")
        row = await cur.fetchone()
    return DatasetSnapshot.from_row(row) if row else None


async def get_snapshot(db: Database, dataset_id: int) -> DatasetSnapshot:
    async with db.connection() as conn:
        cur = await conn.execute(f"{_SNAPSHOT} WHERE id = %s", (dataset_id,))
        row = await cur.fetchone()
    if row is None:
        raise DatasetNotFound(f"there is no dataset {dataset_id}")
    return DatasetSnapshot.from_row(row)


async def load_pairs(db: Database, dataset_id: int, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """A snapshot's pairs of one split, in TRL's conversational preference format, in the snapshot's order.

    With `limit`, at most that many: every prompt's n-th pair (in an order hashed from the pair, so each prompt
    gives a fair mix of its kinds and source orders) before any prompt's n+1-th, newest prompt first.
    """
    async with db.connection() as conn:
        cur = await conn.execute(_LOAD_PAIRS, {"dataset": dataset_id, "split": split, "limit": limit})
        return [trl_record(*row) for row in await cur.fetchall()]


async def export_jsonl(db: Database, dataset_id: int, path: Path, split: str = "train") -> int:
    """Write a snapshot's pairs of one split to `path`, one TRL conversational pair per line; return how many."""
    await get_snapshot(db, dataset_id)
    written = 0
    async with db.connection() as conn:
        cur = conn.cursor()
        with path.open("w", encoding="utf-8") as out:
            async for row in cur.stream(
                "SELECT prompt, chosen, rejected FROM dataset_pairs WHERE dataset_id = %s AND split = %s"
                " ORDER BY position",
                (dataset_id, split),
            ):
                out.write(json.dumps(trl_record(*row), ensure_ascii=False) + "\n")
                written += 1
    return written


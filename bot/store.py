"""Every SQL statement of the bot: message claims, the answer log, thread history, the active adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bot.home import HomeStats
from core.prompt import Turn
from core.db import Database

# the latest corrections read for an admin's App Home; it shows the first few from conversations they are in
RECENT_CORRECTIONS_READ = 50


@dataclass
class AskContext:
    """Where a question came from, for the log."""

    source: str = "cli"
    team_id: str | None = None
    channel_id: str | None = None
    user_id: str | None = None
    thread_ts: str | None = None
    question_ts: str | None = None


@dataclass
class InteractionRecord:
    """One answer as logged: what was asked and where, what the model saw, what it said, how long it took."""

    context: AskContext
    question: str
    prompt_messages: list[dict[str, str]]
    sources: list[dict[str, Any]]
    answer: str
    status: str
    cited: list[int]
    raw_answer: str | None = None
    model: str | None = None
    adapter_id: int | None = None
    error: str | None = None
    answer_ts: str | None = None
    spaces: list[str] | None = None
    retrieval_ms: float | None = None
    generation_ms: float | None = None
    total_ms: float | None = None


class BotStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim_message(self, channel: str, ts: str, event_id: str | None) -> bool:
        """True for the first delivery of a message; False for retries and duplicates (any replica)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO slack_claims (channel_id, message_ts, event_id) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (channel, ts, event_id),
            )
            return cur.rowcount == 1

    async def bot_answered_thread(self, channel: str, thread_ts: str) -> bool:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM interactions WHERE channel_id = %s AND thread_ts = %s LIMIT 1", (channel, thread_ts)
            )
            return await cur.fetchone() is not None

    async def thread_history(self, channel: str, thread_ts: str, turns: int) -> list[Turn]:
        """The last `turns` answered questions of a thread, oldest first."""
        if turns == 0:
            return []
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT question, answer FROM interactions WHERE channel_id = %s AND thread_ts = %s"
                " AND status = 'answered' ORDER BY created_at DESC, id DESC LIMIT %s",
                (channel, thread_ts, turns),
            )
            rows = await cur.fetchall()
        return [Turn(q, a) for q, a in reversed(rows)]

    async def log_interaction(self, record: InteractionRecord) -> int:
        values = {k: v for k, v in record.__dict__.items() if k != "context"} | record.context.__dict__
        values["prompt_messages"] = Jsonb(record.prompt_messages)
        values["sources"] = Jsonb(record.sources)
        columns = ", ".join(values)
        placeholders = ", ".join(f"%({name})s" for name in values)
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"INSERT INTO interactions ({columns}) VALUES ({placeholders}) RETURNING id", values
            )
            (interaction_id,) = await cur.fetchone()  # type: ignore[misc]
            if record.context.channel_id and record.context.question_ts:
                await conn.execute(
                    "UPDATE slack_claims SET interaction_id = %s WHERE channel_id = %s AND message_ts = %s",
                    (interaction_id, record.context.channel_id, record.context.question_ts),
                )
        return interaction_id

    async def set_answer_ts(self, interaction_id: int, answer_ts: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute("UPDATE interactions SET answer_ts = %s WHERE id = %s", (answer_ts, interaction_id))

    async def interaction(self, interaction_id: int) -> dict[str, Any] | None:
        async with self.db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM interactions WHERE id = %s", (interaction_id,))
            return await cur.fetchone()

    async def home_stats(self) -> HomeStats:
        week = "created_at > now() - interval '7 days'"
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT count(*) FILTER (WHERE {week}), count(*),"
                f" count(*) FILTER (WHERE {week} AND status = 'no_sources'),"
                f" count(*) FILTER (WHERE {week} AND status = 'llm_error'),"
                f" count(*) FILTER (WHERE {week} AND EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id ="
                " interactions.id AND f.retracted_at IS NULL)) FROM interactions"
            )
            answers_7d, total, no_sources, llm_errors, with_feedback = await cur.fetchone()  # type: ignore[misc]
            cur = await conn.execute(
                "SELECT count(*) FILTER (WHERE r.value > 0), count(*) FILTER (WHERE r.value < 0)"
                " FROM effective_ratings r JOIN interactions i ON i.id = r.interaction_id"
                " WHERE i.created_at > now() - interval '7 days'"
            )
            up, down = await cur.fetchone()  # type: ignore[misc]
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT f.user_id, f.text, i.question, i.channel_id FROM feedback f"
                " JOIN interactions i ON i.id = f.interaction_id WHERE f.kind = 'correction' AND f.retracted_at IS NULL"
                " ORDER BY f.created_at DESC LIMIT %s",
                (RECENT_CORRECTIONS_READ,),
            )
            corrections = await cur.fetchall()
            await cur.execute(
                "SELECT count(*) AS n FROM feedback WHERE kind = 'correction' AND retracted_at IS NULL"
                f" AND {week}"
            )
            corrections_7d = (await cur.fetchone())["n"]  # type: ignore[index]
        return HomeStats(
            answers_7d=answers_7d,
            answers_total=total,
            answered_with_feedback_7d=with_feedback,
            thumbs_up_7d=up,
            thumbs_down_7d=down,
            corrections_7d=corrections_7d,
            no_sources_7d=no_sources,
            llm_errors_7d=llm_errors,
            recent_corrections=corrections,
        )

"""Every SQL statement on feedback. Idempotent: Slack event ids are recorded, and a change older than the
one already applied (a late or replayed delivery) is ignored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from retrieval.db import Database

_NEWER = "(feedback.event_ts IS NULL OR EXCLUDED.event_ts IS NULL OR EXCLUDED.event_ts >= feedback.event_ts)"


def _ts(value: str | None) -> Decimal | None:
    return Decimal(value) if value else None


class FeedbackStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def first_delivery(self, event_id: str | None) -> bool:
        """Record a Slack event id; False if it was already applied (a retry or replay)."""
        if not event_id:
            return True
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO feedback_events (event_id) VALUES (%s) ON CONFLICT DO NOTHING", (event_id,)
            )
            return cur.rowcount == 1

    async def interaction_for_answer(self, channel: str, answer_ts: str) -> int | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM interactions WHERE channel_id = %s AND answer_ts = %s", (channel, answer_ts)
            )
            row = await cur.fetchone()
        return row[0] if row else None

    async def latest_answer_before(self, channel: str, thread_ts: str, before_ts: str) -> int | None:
        """The bot's most recent answer in a thread before a reply: what the reply is about."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM interactions WHERE channel_id = %s AND thread_ts = %s AND answer_ts IS NOT NULL"
                " AND answer_ts::numeric < %s ORDER BY answer_ts::numeric DESC LIMIT 1",
                (channel, thread_ts, _ts(before_ts)),
            )
            row = await cur.fetchone()
        return row[0] if row else None

    async def set_rating(
        self, interaction_id: int, user: str, via: str, value: int, event_ts: str | None, retract: bool = False
    ) -> None:
        """Add (or, with `retract`, withdraw) one user's rating of an answer through one emoji or the buttons."""
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO feedback (interaction_id, user_id, kind, via, value, event_ts, retracted_at)"
                " VALUES (%s, %s, 'rating', %s, %s, %s, CASE WHEN %s THEN now() END)"
                " ON CONFLICT (interaction_id, user_id, via) WHERE kind = 'rating' DO UPDATE SET"
                " value = EXCLUDED.value, event_ts = EXCLUDED.event_ts, retracted_at = EXCLUDED.retracted_at,"
                f" updated_at = now() WHERE {_NEWER}",
                (interaction_id, user, via, value, _ts(event_ts), retract),
            )

    async def save_reply(
        self, interaction_id: int, user: str, kind: str, text: str, channel: str, message_ts: str, event_ts: str | None
    ) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO feedback (interaction_id, user_id, kind, via, text, channel_id, message_ts, event_ts)"
                " VALUES (%s, %s, %s, 'reply', %s, %s, %s, %s)"
                " ON CONFLICT (channel_id, message_ts) WHERE message_ts IS NOT NULL DO UPDATE SET"
                f" kind = EXCLUDED.kind, text = EXCLUDED.text, event_ts = EXCLUDED.event_ts, updated_at = now()"
                f" WHERE {_NEWER}",
                (interaction_id, user, kind, text, channel, message_ts, _ts(event_ts)),
            )

    async def edit_reply(self, channel: str, message_ts: str, kind: str, text: str, event_ts: str | None) -> bool:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE feedback SET kind = %s, text = %s, event_ts = %s, updated_at = now()"
                " WHERE channel_id = %s AND message_ts = %s AND (event_ts IS NULL OR event_ts <= %s)",
                (kind, text, _ts(event_ts), channel, message_ts, _ts(event_ts)),
            )
            return cur.rowcount == 1

    async def retract_reply(self, channel: str, message_ts: str) -> bool:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE feedback SET retracted_at = now(), updated_at = now()"
                " WHERE channel_id = %s AND message_ts = %s AND retracted_at IS NULL",
                (channel, message_ts),
            )
            return cur.rowcount == 1

    async def save_modal_correction(self, interaction_id: int, user: str, text: str, source_n: int | None) -> int:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO feedback (interaction_id, user_id, kind, via, text, source_n)"
                " VALUES (%s, %s, 'correction', 'modal', %s, %s) RETURNING id",
                (interaction_id, user, text, source_n),
            )
            (feedback_id,) = await cur.fetchone()  # type: ignore[misc]
            return feedback_id

    async def interaction_sources(self, interaction_id: int) -> list[dict[str, Any]] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT sources FROM interactions WHERE id = %s", (interaction_id,))
            row = await cur.fetchone()
        return row[0] if row else None

    async def list(self, limit: int | None = None, include_retracted: bool = True) -> list[dict[str, Any]]:
        """Feedback with the question and answer it is about, newest first."""
        where = "" if include_retracted else "WHERE f.retracted_at IS NULL"
        async with self.db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT f.id, f.interaction_id, f.user_id, f.kind, f.via, f.value, f.text, f.source_n,"
                " f.channel_id, f.message_ts, f.created_at, f.updated_at, f.retracted_at,"
                " i.question, i.answer, i.model"
                f" FROM feedback f JOIN interactions i ON i.id = f.interaction_id {where}"
                " ORDER BY f.created_at DESC, f.id DESC LIMIT %s",
                (limit,),
            )
            return await cur.fetchall()

    async def purge_user(self, user: str) -> dict[str, int]:
        """Delete a person's questions (with all feedback on them), their feedback on other answers, and the
        training pairs built from their questions (dataset snapshots keep no link that would show them)."""
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM dataset_pairs WHERE interaction_id IN (SELECT id FROM interactions WHERE user_id = %s)",
                (user,),
            )
            feedback = await conn.execute("DELETE FROM feedback WHERE user_id = %s", (user,))
            questions = await conn.execute("DELETE FROM interactions WHERE user_id = %s", (user,))
        return {"questions": questions.rowcount, "feedback": feedback.rowcount}

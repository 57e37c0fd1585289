"""The answer log and the feedback on it: every SQL statement on `interactions`, `slack_claims`, `feedback` and
`feedback_events` (migrations 0002, 0003, 0005) and their views `effective_ratings` and `correction_status`.
The bot writes it; App Home, the training snapshots (`training.datasets`) and the purge read it here.

Feedback is idempotent: Slack event ids are recorded, and a change older than the one already applied (a late
or replayed delivery) is ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import psycopg
from psycopg.errors import ForeignKeyViolation
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from core.db import Database
from core.prompt import Turn, without_turns

# the latest corrections read for an admin's App Home; it shows the first few from conversations they are in
RECENT_CORRECTIONS_READ = 50
REVIEW_QUEUE_LIMIT = 500  # corrections read per App Home view; a reviewer sees the oldest first
_NEWER = "(feedback.event_ts IS NULL OR EXCLUDED.event_ts IS NULL OR EXCLUDED.event_ts >= feedback.event_ts)"

# What training reads (`AnswerLog.for_training`). Corrections training may use: confirmed by their author, and
# approved by a reviewer where the review rule asks for one (migration 0005's view `correction_status`).
_ACCEPTED = "SELECT id FROM correction_status WHERE status = 'accepted' AND retracted_at IS NULL"
# Every logged answer to a prompt that some answer to it got a rating or accepted correction on. Sources without
# their text (the prompt holds it, the pairs need only their numbers), save on answers with a correction: a
# correction that quotes or paraphrases a source cites it.
_ANSWERS = f"""
SELECT id, prompt_messages,
    CASE WHEN EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = interactions.id AND f.id IN ({_ACCEPTED}))
    THEN sources
    ELSE (SELECT coalesce(jsonb_agg(s - 'text' ORDER BY n), '[]')
          FROM jsonb_array_elements(sources) WITH ORDINALITY e(s, n)) END,
    answer, cited, status
FROM interactions
WHERE md5(prompt_messages::text) IN (
    SELECT md5(i.prompt_messages::text) FROM interactions i
    WHERE EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id AND f.retracted_at IS NULL
        AND (f.kind = 'rating' OR f.id IN ({_ACCEPTED}))))
ORDER BY id
"""
# Each user's standing vote (with the id of the row that holds it), then accepted corrections, then comments.
_FEEDBACK = f"""
SELECT f.id, f.interaction_id, f.user_id, f.kind, f.value, f.text, f.source_n
FROM effective_ratings r
JOIN feedback f ON f.kind = 'rating' AND (f.interaction_id, f.user_id, f.via) = (r.interaction_id, r.user_id, r.via)
WHERE r.interaction_id = ANY(%(ids)s::bigint[])
UNION ALL
SELECT id, interaction_id, user_id, kind, value, text, source_n FROM feedback
WHERE retracted_at IS NULL AND interaction_id = ANY(%(ids)s::bigint[])
    AND (kind = 'comment' OR id IN ({_ACCEPTED}))
ORDER BY id
"""
# Accepted corrections with the question and sources of the answer they correct: what search learns from
# (training/labels.py). Not those on a follow-up in a thread, whose question means little alone ("and on Plus?").
_CORRECTED = f"""
SELECT f.id, f.interaction_id, f.user_id, f.kind, f.value, f.text, f.source_n, i.question, i.sources
FROM feedback f JOIN interactions i ON i.id = f.interaction_id
WHERE f.id IN ({_ACCEPTED}) AND i.status = 'answered'
    AND NOT jsonb_path_exists(i.prompt_messages, '$[*] ? (@.role == "assistant")')
ORDER BY f.id
"""
# Corrections left out, by why: the snapshot's stats say how many wait for their author or a reviewer.
_WITHHELD = """
SELECT count(*) FILTER (WHERE status = 'unconfirmed'), count(*) FILTER (WHERE status = 'pending'),
    count(*) FILTER (WHERE status = 'rejected')
FROM correction_status WHERE retracted_at IS NULL
"""
WITHHELD_STATS = ("corrections_unconfirmed", "corrections_awaiting_review", "corrections_rejected")
# The prompts a person's feedback was on, each as its id (its first logged answer): what the training snapshots
# name pairs by that have no feedback ids (built before pairs recorded them).
_FEEDBACK_PROMPTS = """
SELECT min(j.id) FROM feedback f JOIN interactions i ON i.id = f.interaction_id
JOIN interactions j ON md5(j.prompt_messages::text) = md5(i.prompt_messages::text)
WHERE f.user_id = %s GROUP BY i.id
"""


def _ts(value: str | None) -> Decimal | None:
    return Decimal(value) if value else None


class AnswerGone(LookupError):
    """The answer the feedback is about is no longer stored (deleted on its asker's request)."""


@contextmanager
def _about_a_stored_answer(interaction_id: int) -> Iterator[None]:
    try:
        yield
    except ForeignKeyViolation as exc:
        raise AnswerGone(f"answer {interaction_id} is no longer stored") from exc


class EditedReply(NamedTuple):
    id: int
    user_id: str
    kind: str  # after the edit: the author's choice once confirmed, else what the new text reads as
    previous_kind: str
    confirmed: bool


class CorrectionStatus(NamedTuple):
    status: str  # 'unconfirmed' | 'pending' | 'accepted' | 'rejected' (view correction_status)
    reasons: list[str]  # why a reviewer must decide (bot/feedback.py)


class Purged(NamedTuple):
    questions: int
    feedback: int
    pairs: int  # training pairs deleted from dataset snapshots
    prompts: int  # others' logged prompts their turns were removed from
    datasets: list[int]  # training snapshots that held their data (an adapter trained on one may have learnt it)


class Forgotten(Protocol):
    pairs: int  # training pairs deleted
    datasets: list[int]  # the snapshots that held what was deleted


# What takes a person's data out of the training snapshots (training.datasets.forget, handed in by the app), in the
# purge's transaction: (connection, ids of their questions' answers, ids of their feedback, ids of the prompts their
# feedback was on, their questions).
ForgetCopies = Callable[
    [psycopg.AsyncConnection, list[int], list[int], list[int], list[str]], Awaitable[Forgotten]
]


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


@dataclass
class UsageStats:
    """The answer log's figures App Home shows the bot's owners (the last 7 days, and all time)."""

    answers_7d: int = 0
    answers_total: int = 0
    answered_with_feedback_7d: int = 0
    thumbs_up_7d: int = 0
    thumbs_down_7d: int = 0
    corrections_7d: int = 0
    no_sources_7d: int = 0
    llm_errors_7d: int = 0
    recent_corrections: list[dict[str, Any]] = field(default_factory=list)  # question, text, user


@dataclass(frozen=True)
class LoggedAnswer:
    """One row of the answer log as training reads it."""

    interaction_id: int
    prompt_messages: list[dict[str, str]]
    sources: list[dict[str, Any]]
    answer: str
    cited: list[int]
    status: str


@dataclass(frozen=True)
class FeedbackItem:
    """A standing vote (one per user and answer), or a correction or comment that was not retracted."""

    feedback_id: int
    interaction_id: int
    user_id: str
    kind: str  # 'rating' | 'correction' | 'comment'
    value: int | None = None  # ratings: +1 or -1
    text: str | None = None
    source_n: int | None = None  # corrections from the modal: the source the user says is right


@dataclass(frozen=True)
class Corrected:
    """An accepted correction with the question it answers and the sources the corrected answer had (as logged:
    n, chunk_id, page_id, title, section, url, text)."""

    correction: FeedbackItem
    question: str
    sources: list[dict[str, Any]]


@dataclass(frozen=True)
class TrainingFeedback:
    """What training may learn from now: the answers to prompts with feedback, the feedback standing on them, and
    how many corrections wait or were turned down (`WITHHELD_STATS`)."""

    answers: list[LoggedAnswer]
    feedback: list[FeedbackItem]
    withheld: dict[str, int]


class AnswerLog:
    """The answers the bot gave, where, and to what: written once per answer, read by the bot, App Home and
    training."""

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

    async def usage_stats(self) -> UsageStats:
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
        return UsageStats(
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

    async def for_training(self, conn: psycopg.AsyncConnection) -> TrainingFeedback:
        """What training may learn from now, read on `conn` (the snapshot's transaction)."""
        cur = await conn.execute(_ANSWERS)
        answers = [LoggedAnswer(*row) for row in await cur.fetchall()]
        cur = await conn.execute(_FEEDBACK, {"ids": [a.interaction_id for a in answers]})
        feedback = [FeedbackItem(*row) for row in await cur.fetchall()]
        cur = await conn.execute(_WITHHELD)
        withheld = dict(zip(WITHHELD_STATS, await cur.fetchone() or (0, 0, 0), strict=True))
        return TrainingFeedback(answers, feedback, withheld)

    async def accepted_corrections(self) -> list[Corrected]:
        """Every accepted correction standing now, oldest first, but those on follow-ups in a thread (_CORRECTED)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(_CORRECTED)
            return [Corrected(FeedbackItem(*row[:7]), row[7], row[8]) for row in await cur.fetchall()]

    async def purge_user(self, user: str, forget: ForgetCopies) -> Purged:
        """Delete a person's questions (with all feedback on them) and their feedback on other answers; take every
        copy out of the training snapshots (`forget`) and out of the logged prompts of others' follow-ups in their
        threads (their turn removed in place). One transaction: all of it or nothing."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT id, question, channel_id, thread_ts FROM interactions WHERE user_id = %s", (user,)
            )
            asked = await cur.fetchall()
            cur = await conn.execute("SELECT id FROM feedback WHERE user_id = %s", (user,))
            given = [row[0] for row in await cur.fetchall()]
            questions = sorted({question for _, question, _, _ in asked})
            cur = await conn.execute(_FEEDBACK_PROMPTS, (user,))
            prompts = [row[0] for row in await cur.fetchall()]
            forgotten = await forget(conn, [row[0] for row in asked], given, prompts, questions)
            cur = await conn.execute(
                "SELECT id, prompt_messages FROM interactions WHERE user_id IS DISTINCT FROM %s"
                " AND (channel_id, thread_ts) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (user, [row[2] for row in asked], [row[3] for row in asked]),
            )
            redacted = 0
            for interaction_id, messages in await cur.fetchall():
                if (kept := without_turns(messages, questions)) != messages:
                    await conn.execute(
                        "UPDATE interactions SET prompt_messages = %s WHERE id = %s", (Jsonb(kept), interaction_id)
                    )
                    redacted += 1
            feedback = await conn.execute("DELETE FROM feedback WHERE user_id = %s", (user,))
            deleted = await conn.execute("DELETE FROM interactions WHERE user_id = %s", (user,))
        return Purged(deleted.rowcount, feedback.rowcount, forgotten.pairs, redacted, forgotten.datasets)


class FeedbackLog:
    """Ratings, corrections and comments on logged answers."""

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
        """Add (or, with `retract`, withdraw) one user's rating of an answer through one emoji or the buttons.
        AnswerGone if the answer was deleted."""
        with _about_a_stored_answer(interaction_id):
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
        self, interaction_id: int, user: str, kind: str, text: str, channel: str, message_ts: str,
        event_ts: str | None, reasons: list[str],
    ) -> int | None:
        """Store a thread reply as feedback; its id when it is new (a redelivery of it returns None). Once its
        author has said what it is, a redelivery keeps that."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO feedback (interaction_id, user_id, kind, via, text, channel_id, message_ts, event_ts,"
                " review_reasons) VALUES (%s, %s, %s, 'reply', %s, %s, %s, %s, %s)"
                " ON CONFLICT (channel_id, message_ts) WHERE message_ts IS NOT NULL DO UPDATE SET"
                " kind = CASE WHEN feedback.confirmed_at IS NULL THEN EXCLUDED.kind ELSE feedback.kind END,"
                " text = EXCLUDED.text, event_ts = EXCLUDED.event_ts, review_reasons = EXCLUDED.review_reasons,"
                f" updated_at = now() WHERE {_NEWER} RETURNING id, xmax = 0",
                (interaction_id, user, kind, text, channel, message_ts, _ts(event_ts), reasons),
            )
            row = await cur.fetchone()
        return row[0] if row and row[1] else None

    async def edit_reply(
        self, channel: str, message_ts: str, kind: str, text: str, event_ts: str | None, reasons: list[str]
    ) -> EditedReply | None:
        """Apply an edit of a reply: its text, its review reasons, and (until its author said) its kind. A reviewer's
        verdict was on the old text: it goes when the text changes."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "WITH old AS (SELECT id, kind, text FROM feedback WHERE channel_id = %(channel)s"
                " AND message_ts = %(ts)s AND (event_ts IS NULL OR event_ts <= %(event_ts)s) FOR UPDATE)"
                " UPDATE feedback f SET kind = CASE WHEN f.confirmed_at IS NULL THEN %(kind)s ELSE f.kind END,"
                " text = %(text)s, event_ts = %(event_ts)s, review_reasons = %(reasons)s, updated_at = now(),"
                " review_verdict = CASE WHEN old.text = %(text)s THEN f.review_verdict END,"
                " reviewed_by = CASE WHEN old.text = %(text)s THEN f.reviewed_by END,"
                " reviewed_at = CASE WHEN old.text = %(text)s THEN f.reviewed_at END"
                " FROM old WHERE f.id = old.id"
                " RETURNING f.id, f.user_id, f.kind, old.kind, f.confirmed_at IS NOT NULL",
                {"channel": channel, "ts": message_ts, "kind": kind, "text": text, "event_ts": _ts(event_ts),
                 "reasons": reasons},
            )
            row = await cur.fetchone()
        return EditedReply(*row) if row else None

    async def confirm_reply(self, feedback_id: int, user: str, kind: str) -> bool:
        """The author of a reply says what it is ('correction' or 'comment'); False if it is not theirs or gone."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE feedback SET kind = %s, confirmed_by = %s, confirmed_at = now(), updated_at = now()"
                " WHERE id = %s AND user_id = %s AND via = 'reply' AND retracted_at IS NULL",
                (kind, user, feedback_id, user),
            )
            return cur.rowcount == 1

    async def correction_status(self, feedback_id: int) -> CorrectionStatus | None:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT status, reasons FROM correction_status WHERE id = %s", (feedback_id,))
            row = await cur.fetchone()
        return CorrectionStatus(*row) if row else None

    async def corrections_to_review(self, feedback_id: int | None = None) -> list[dict[str, Any]]:
        """Confirmed corrections that wait for a reviewer (oldest first; or just `feedback_id` if it waits), with
        the question, the answer, where it was asked and which spaces its sources came from."""
        async with self.db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT f.id, f.user_id, f.via, f.text, f.source_n, f.confirmed_by, f.created_at, c.reasons,"
                " i.channel_id, i.question, i.answer,"
                " (SELECT coalesce(jsonb_agg(jsonb_build_object('n', s->'n', 'title', s->'title',"
                "  'section', s->'section')), '[]') FROM jsonb_array_elements(i.sources) s) AS sources,"
                " ARRAY(SELECT DISTINCT s->>'space' FROM jsonb_array_elements(i.sources) s) AS spaces"
                " FROM correction_status c JOIN feedback f ON f.id = c.id"
                " JOIN interactions i ON i.id = f.interaction_id"
                " WHERE c.status = 'pending' AND c.retracted_at IS NULL AND (%(id)s::bigint IS NULL OR f.id = %(id)s)"
                " ORDER BY f.created_at, f.id LIMIT %(limit)s",
                {"id": feedback_id, "limit": REVIEW_QUEUE_LIMIT},
            )
            return await cur.fetchall()

    async def review(self, feedback_id: int, reviewer: str, verdict: str) -> bool:
        """A reviewer approves or rejects a correction that waits for one; False if it no longer waits."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE feedback SET review_verdict = %s, reviewed_by = %s, reviewed_at = now(), updated_at = now()"
                " WHERE id = %s AND id IN (SELECT id FROM correction_status WHERE status = 'pending')",
                (verdict, reviewer, feedback_id),
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

    async def save_modal_correction(
        self, interaction_id: int, user: str, text: str, source_n: int | None, reasons: list[str], view_id: str
    ) -> int | None:
        """A correction from the form: explicit, so confirmed by its author as it is given. Its id; None when this
        form (`view_id`) was already recorded (sent twice). AnswerGone if the answer was deleted."""
        with _about_a_stored_answer(interaction_id):
            async with self.db.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO feedback_events (event_id) VALUES (%s) ON CONFLICT DO NOTHING", (f"view:{view_id}",)
                )
                if cur.rowcount == 0:
                    return None
                cur = await conn.execute(
                    "INSERT INTO feedback (interaction_id, user_id, kind, via, text, source_n, confirmed_by,"
                    " confirmed_at, review_reasons) VALUES (%s, %s, 'correction', 'modal', %s, %s, %s, now(), %s)"
                    " RETURNING id",
                    (interaction_id, user, text, source_n, user, reasons),
                )
                (feedback_id,) = await cur.fetchone()  # type: ignore[misc]
                return feedback_id

    async def interaction_sources(self, interaction_id: int) -> list[dict[str, Any]] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT sources FROM interactions WHERE id = %s", (interaction_id,))
            row = await cur.fetchone()
        return row[0] if row else None

    async def list(self, limit: int | None = None, include_retracted: bool = True) -> list[dict[str, Any]]:
        """Feedback with the question and answer it is about, newest first; corrections with who confirmed and who
        reviewed them, and their standing (`correction_status`)."""
        where = "" if include_retracted else "WHERE f.retracted_at IS NULL"
        async with self.db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT f.id, f.interaction_id, f.user_id, f.kind, f.via, f.value, f.text, f.source_n,"
                " f.channel_id, f.message_ts, f.created_at, f.updated_at, f.retracted_at,"
                " f.confirmed_by, f.confirmed_at, c.status AS correction_status, c.reasons AS review_reasons,"
                " f.reviewed_by, f.reviewed_at, i.question, i.answer, i.model"
                " FROM feedback f JOIN interactions i ON i.id = f.interaction_id"
                f" LEFT JOIN correction_status c ON c.id = f.id {where}"
                " ORDER BY f.created_at DESC, f.id DESC LIMIT %s",
                (limit,),
            )
            return await cur.fetchall()

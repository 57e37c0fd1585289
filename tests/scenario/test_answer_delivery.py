"""Every question gets its answer in the thread, whatever fails on the way (Slack's rate limits and errors, the
database, a model emitting control characters), and the working signal is always cleared.

The real Bolt app over signed HTTP, the Slack API double, a scripted LLM, a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from wikibot.cli import main
from bot.slack_reply import GAVE_UP, WORKING_REACTION
from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from loopback import slack_events as ev
from loopback.bot_harness import RunningBot, running_bot, slack_settings
from tests.support.db_outage import database_outage
from loopback.llm_double import scripted_llm
from loopback.slack_api import FakeSlackAPI, PostedMessage

QUESTION = "what is the vacation carryover rule?"
ANSWER = ["Unused vacation days ", "carry over [1]."]
LONG_ANSWER = [f"Point {i}: unused vacation days carry over into the next year [1]. " for i in range(8)]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@asynccontextmanager
async def answering_bot(
    settings: Settings, slack: FakeSlackAPI, embedder: Embedder, pieces: Sequence[str],
    after_pieces: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[RunningBot]:
    async with scripted_llm(pieces, after_pieces=after_pieces) as llm_url:
        async with running_bot(slack_settings(settings, slack, llm_base_url=llm_url), slack, embedder) as bot:
            yield bot


async def ask(bot: RunningBot) -> dict[str, Any]:
    mention = ev.app_mention("U1", "C1", f"<@UBOT> {QUESTION}")
    assert (await bot.post(mention))[0] == 200
    return mention


async def working_signal_cleared(slack: FakeSlackAPI, mention: dict[str, Any]) -> None:
    (removed,) = await slack.async_wait_for("reactions.remove", timeout=20)
    p = removed.params
    assert (p["channel"], p["timestamp"], p["name"]) == ("C1", mention["ts"], WORKING_REACTION)


def thread_reply(slack: FakeSlackAPI) -> PostedMessage:
    """The one message the bot has in the thread (streamed or posted, edits applied, deletions dropped)."""
    (message,) = slack.posted_messages()
    return message


def strings(value: Any) -> list[str]:
    """Every string in a JSON-like value."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for item in items for s in strings(item)]


def block_types(message: PostedMessage) -> list[str]:
    return [b["type"] for b in message.blocks or []]


async def test_rate_limited_stream_start_is_retried_and_the_answer_posted(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder
):
    slack.fail("chat.startStream", status=429, retry_after=1)
    async with answering_bot(settings, slack, embedder, ANSWER) as bot:
        mention = await ask(bot)
        (row,) = await bot.wait_answered(1, timeout=20)
        await working_signal_cleared(slack, mention)
    assert len(slack.calls_to("chat.startStream")) == 2, "retried after Retry-After"
    reply = thread_reply(slack)
    assert reply.ts == row["answer_ts"] and reply.text == "Unused vacation days carry over [1]."
    assert "context_actions" in block_types(reply), "with its feedback controls"


async def test_stream_that_cannot_start_falls_back_to_a_plain_post(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder
):
    slack.fail("chat.startStream", error="internal_error")  # not a rate limit: not retried
    async with answering_bot(settings, slack, embedder, LONG_ANSWER) as bot:
        mention = await ask(bot)  # long enough to start streaming while the model answers
        (row,) = await bot.wait_answered(1, timeout=20)
        await working_signal_cleared(slack, mention)
    assert row["answer"] == "".join(LONG_ANSWER).strip(), "the whole answer, not cut where streaming failed"
    (posted,) = slack.calls_to("chat.postMessage")
    assert posted.params["thread_ts"] == mention["ts"]
    reply = thread_reply(slack)
    assert reply.ts == row["answer_ts"] and reply.text == row["answer"]
    assert "context_actions" in block_types(reply)


async def test_streamed_answer_that_cannot_be_replaced_is_posted_again_with_sources_and_feedback(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder
):
    slack.fail("chat.update", error="internal_error")
    async with answering_bot(settings, slack, embedder, ANSWER) as bot:
        mention = await ask(bot)
        (row,) = await bot.wait_answered(1, timeout=20)
        await working_signal_cleared(slack, mention)
        reply = thread_reply(slack)  # the raw streamed text is gone
        assert reply.ts == row["answer_ts"] and reply.text == "Unused vacation days carry over [1]."
        assert "Sources" in json.dumps(reply.blocks) and "context_actions" in block_types(reply)
        await bot.post(ev.reaction_added("U2", "+1", "C1", reply.ts))
        async with asyncio.timeout(10):  # a reaction on the answer people see counts
            while await votes(bot) != {"U2": 1}:
                await asyncio.sleep(0.05)


async def votes(bot: RunningBot) -> dict[str, int]:
    async with bot.services.index.db.connection() as conn:
        cur = await conn.execute("SELECT user_id, value FROM effective_ratings")
        return dict(await cur.fetchall())


async def test_answer_is_posted_when_the_database_goes_away_after_generation(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, pg_server_url: str
):
    async with database_outage(pg_server_url, settings.database_url or "") as outage:
        bot_settings = settings.model_copy(update={"database_url": outage.url})
        async with answering_bot(bot_settings, slack, embedder, ANSWER, after_pieces=outage.start) as bot:
            mention = await ask(bot)
            await working_signal_cleared(slack, mention)
    reply = thread_reply(slack)
    assert reply.text == "Unused vacation days carry over [1]."
    said = json.dumps(reply.blocks)
    assert "could not be saved" in said and "Sources" in said
    assert "context_actions" not in block_types(reply), "no feedback controls on an answer that is not logged"


async def test_database_down_when_asked_is_said_in_the_thread(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, pg_server_url: str
):
    async with database_outage(pg_server_url, settings.database_url or "") as outage:
        bot_settings = settings.model_copy(update={"database_url": outage.url})
        async with answering_bot(bot_settings, slack, embedder, ANSWER) as bot:
            await outage.start()
            mention = await ask(bot)
            (posted,) = await slack.async_wait_for("chat.postMessage", timeout=40)
    assert posted.params["thread_ts"] == mention["ts"] and posted.params["text"] == GAVE_UP


async def test_model_output_with_control_characters_is_cleaned_before_it_is_posted_and_logged(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder
):
    pieces = ["Unused\x00 vacation days\x1b ", "carry\x01 over\r [1]\x07.\x00"]
    async with answering_bot(settings, slack, embedder, pieces) as bot:
        mention = await ask(bot)
        (row,) = await bot.wait_answered(1, timeout=20)
        await working_signal_cleared(slack, mention)
    assert row["answer"] == row["raw_answer"] == "Unused vacation days carry over [1]."
    reply = thread_reply(slack)
    assert reply.text == row["answer"]
    assert not [s for call in slack.calls for s in strings(call.params) if CONTROL.search(s)], "nor streamed"


async def test_ask_command_with_control_characters_in_the_model_output(
    wiki: WikiIndex, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    async with scripted_llm(["Unused vacation days\x00 ", "carry over [1]."]) as llm_url:
        monkeypatch.setenv("WIKIBOT_DATABASE_URL", wiki.settings.database_url or "")
        monkeypatch.setenv("WIKIBOT_LLM_BASE_URL", llm_url)
        assert await asyncio.to_thread(main, ["ask", QUESTION, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"] == "Unused vacation days carry over [1]." and out["interaction_id"] is not None

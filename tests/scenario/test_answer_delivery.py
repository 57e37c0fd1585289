"""Every question gets its answer in the thread, whatever fails on the way (Slack's rate limits and errors, the
database, a model emitting control characters), and the working signal is always cleared.

The real Bolt app over signed HTTP, the Slack API double, a scripted LLM, a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.cli import main
from bot.slack_reply import WORKING_REACTION
from retrieval.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from tests.support import slack_events as ev
from tests.support.bot_harness import RunningBot, running_bot, slack_settings
from tests.support.llm_double import scripted_llm
from tests.support.slack_api import FakeSlackAPI, PostedMessage

QUESTION = "what is the vacation carryover rule?"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@asynccontextmanager
async def answering_bot(
    settings: Settings, slack: FakeSlackAPI, embedder: Embedder, pieces: Sequence[str]
) -> AsyncIterator[RunningBot]:
    async with scripted_llm(pieces) as llm_url:
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

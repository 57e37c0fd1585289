"""Who sees what, through the real Bolt app over signed HTTP: requests that are not Slack's, what the App Home
shows whom, where direct messages look, what credentials and purged people leave behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from retrieval.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from tests.support import slack_events as ev
from tests.support.bot_harness import RunningBot, running_bot, slack_settings
from tests.support.llm_double import scripted_llm
from tests.support.slack_api import FakeSlackAPI

pytestmark = pytest.mark.slow
ANSWER = ["Unused vacation days ", "carry over [1]."]


@pytest.fixture
async def llm() -> AsyncIterator[str]:
    async with scripted_llm(ANSWER) as url:
        yield url


@asynccontextmanager
async def bot_with(settings: Settings, slack: FakeSlackAPI, embedder: Embedder, llm: str,
                   **overrides: Any) -> AsyncIterator[RunningBot]:
    configured = slack_settings(settings, slack, llm_base_url=llm, stream_answers=False, **overrides)
    async with running_bot(configured, slack, embedder) as running:
        yield running


@pytest.fixture
async def bot(wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder,
              llm: str) -> AsyncIterator[RunningBot]:
    async with bot_with(settings, slack, embedder, llm) as running:
        yield running


async def logged(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while text not in caplog.text:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", {"Content-Type": "application/json"}),
        (b"payload=%7Bnot-json", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"\xff\xfe{", {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "soon",
                        "X-Slack-Signature": "v0=0"}),
    ],
    ids=["json", "form", "bytes-and-bad-headers"],
)
async def test_a_malformed_unsigned_body_gets_401_before_it_is_parsed(
    bot: RunningBot, body: bytes, headers: dict[str, str], caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session, session.post(bot.url, data=body, headers=headers) as response:
        assert (response.status, await response.json()) == (401, {"error": "invalid request"})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


async def test_direct_messages_see_only_the_spaces_set_for_them(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, llm: str,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO, logger="bot")
    question = "what does AutoGuard Plus cover for windshields?"  # the products space has it
    limited = {"allowed_channels": ["C1"], "channel_spaces": {"C1": ["hr"]}}
    async with bot_with(settings, slack, embedder, llm, **limited) as bot:
        await bot.post(ev.message_im("U2", question, channel="D7"))
        await logged(caplog, "not answering in D7: not allowed by WIKIBOT_ALLOW_DMS and WIKIBOT_DM_SPACES")
        assert await bot.interactions() == [] and not slack.calls_to("chat.postMessage")

    async with bot_with(settings, slack, embedder, llm, **limited, allow_dms=True, dm_spaces=["it"]) as bot:
        await bot.post(ev.message_im("U2", question, channel="D7"))
        (row,) = await bot.wait_answered(1)
    assert row["spaces"] == ["it"] and {s["space"] for s in row["sources"]} <= {"it"}

"""Who sees what, through the real Bolt app over signed HTTP: requests that are not Slack's, what the App Home
shows whom, where direct messages look, what credentials and purged people leave behind."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from retrieval.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from tests.support.bot_harness import RunningBot, running_bot, slack_settings
from tests.support.llm_double import scripted_llm
from tests.support.slack_api import FakeSlackAPI

pytestmark = pytest.mark.slow
ANSWER = ["Unused vacation days ", "carry over [1]."]


@pytest.fixture
async def bot(wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder) -> AsyncIterator[RunningBot]:
    async with scripted_llm(ANSWER) as llm:
        configured = slack_settings(settings, slack, llm_base_url=llm, stream_answers=False)
        async with running_bot(configured, slack, embedder) as running:
            yield running


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

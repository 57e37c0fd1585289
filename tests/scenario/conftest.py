"""Fixtures for whole-app flows: the sample wiki, a Slack API double, the Bolt app over HTTP with a real vLLM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.sample import sample_spaces
from loopback.bot_harness import RunningBot, running_bot, slack_settings
from loopback.slack_api import FakeSlackAPI


@pytest.fixture(scope="module")
def database_url(sample_wiki_url: str) -> str:
    """Every flow here runs on a copy of the sample wiki's database."""
    return sample_wiki_url


@pytest.fixture(scope="module")
def wiki(index: WikiIndex) -> WikiIndex:
    """The module's index, which holds the sample wiki (`database_url` above)."""
    return index


@pytest.fixture
def slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
async def bot(wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder,
              vllm_url: str) -> AsyncIterator[RunningBot]:
    configured = slack_settings(
        settings, slack, llm_base_url=vllm_url, llm_max_tokens=24, llm_temperature=0.0, prompt_max_chars=1500,
        allowed_channels=["C1", "C2", "CEMPTY"], channel_spaces={"CEMPTY": ["no-such-space"]}, allow_dms=True,
        dm_spaces=sample_spaces(), admin_users=["U1"],
    )
    async with running_bot(configured, slack, embedder) as running:
        yield running

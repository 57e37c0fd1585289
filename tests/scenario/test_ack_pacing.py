"""Acks first: a burst of mentions is all acked before any of it is answered, a lone mention is answered at once,
and answers never wait long for a stream of requests to end.

The real Bolt app over signed HTTP, the Slack API double, a scripted LLM, a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.pacing import AcksFirst
from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from loopback import slack_events as ev
from loopback.bot_harness import RunningBot, running_bot, slack_settings
from loopback.llm_double import scripted_llm
from loopback.slack_api import FakeSlackAPI

BURST = 30
LONG = 30.0  # seconds: far longer than any burst takes to arrive, or any answer takes, on a busy machine


@pytest.fixture
async def bot(wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder) -> AsyncIterator[RunningBot]:
    async with scripted_llm(["Five days [1]."]) as llm_url:
        async with running_bot(slack_settings(settings, slack, llm_base_url=llm_url), slack, embedder) as running:
            yield running


def mention(i: int) -> dict:
    return ev.app_mention("U1", "C1", f"<@UBOT> how many days of bereavement leave, question {i}?")


async def test_a_burst_of_mentions_is_all_acked_before_any_answering_reaches_slack(bot: RunningBot,
                                                                                    slack: FakeSlackAPI):
    bot.services.acks.quiet_s, bot.services.acks.longest_s = LONG / 10, LONG  # a burst ends when 3 s pass quietly
    seen_at_ack: list[int] = []  # answers' first Slack calls (the working signal) made when each ack came back

    async def post(i: int) -> int:
        status = (await bot.post(mention(i)))[0]
        seen_at_ack.append(len(slack.calls_to("reactions.add")))
        return status

    assert await asyncio.gather(*(post(i) for i in range(BURST))) == [200] * BURST
    assert seen_at_ack == [0] * BURST
    assert len(await bot.wait_answered(BURST, timeout=120)) == BURST


async def test_a_lone_mention_is_answered_without_waiting_for_a_quiet_spell(bot: RunningBot):
    bot.services.acks.quiet_s, bot.services.acks.longest_s = LONG, LONG
    assert (await bot.post(mention(0)))[0] == 200
    await bot.wait_answered(1, timeout=LONG / 2)


async def test_answers_start_after_longest_s_while_requests_keep_coming():
    acks = AcksFirst(quiet_s=LONG, longest_s=0.2)
    with acks.handling(), acks.handling():  # two requests, never acked meanwhile
        async with asyncio.timeout(LONG / 2):
            await acks.wait()

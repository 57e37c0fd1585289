"""Feedback people can trust, through the real Bolt app over signed HTTP: a correction counts only when its author
confirms it (and a reviewer approves it where the rule asks for one); answers link only to the wiki."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from retrieval.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from tests.support import slack_events as ev
from tests.support.bot_harness import RunningBot, running_bot, slack_settings
from tests.support.llm_double import scripted_llm
from tests.support.slack_api import FakeSlackAPI

pytestmark = pytest.mark.slow
# a model steered by a poisoned source: the link is cut between two streamed pieces
ANSWER = ["Five days [1]. Log in at the [HR ", "portal](https://hr-portal.evil", ".example/login) with your password."]


@pytest.fixture
async def bot(wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder
              ) -> AsyncIterator[RunningBot]:
    async with scripted_llm(ANSWER) as llm_url:
        async with running_bot(slack_settings(settings, slack, llm_base_url=llm_url), slack, embedder) as running:
            yield running


async def ask(bot: RunningBot, user: str = "U1") -> tuple[dict[str, Any], dict[str, Any]]:
    question = ev.app_mention(user, "C1", "<@UBOT> how many days of bereavement leave for a grandparent?")
    await bot.post(question)
    rows = await bot.wait_answered(len(await bot.interactions()) + 1)
    return question, rows[-1]


async def feedback_kinds(bot: RunningBot) -> list[tuple[str, str]]:
    async with bot.services.index.db.connection() as conn:
        cur = await conn.execute("SELECT kind, text FROM feedback ORDER BY id")
        return list(await cur.fetchall())


def streamed_text(slack: FakeSlackAPI) -> str:
    calls = [c for c in slack.calls if c.method in ("chat.startStream", "chat.appendStream", "chat.stopStream")]
    return "".join(str(c.params.get("markdown_text") or "") + "".join(
        str(chunk.get("text", "")) for chunk in c.params.get("chunks") or [] if isinstance(chunk, dict)
    ) for c in calls)


async def test_an_answer_never_links_outside_the_wiki_streamed_or_final(bot: RunningBot):
    _, row = await ask(bot)
    assert "https://hr-portal.evil.example/login" in row["raw_answer"], "logged as the model wrote it"
    streamed = streamed_text(bot.slack)
    assert streamed.startswith("Five days [1].") and "[HR portal] (hr-portal.evil[.]example/login) with" in streamed
    assert "://hr-portal" not in streamed
    final = bot.slack.calls_to("chat.update")[-1].params
    section = final["blocks"][0]["text"]
    assert section["verbatim"] is True
    assert section["text"].startswith("Five days <https://wiki.harborline.example/hr/")
    assert "HR portal (hr-portal.evil[.]example/login) with your password." in section["text"]
    assert "://hr-portal" not in section["text"] and "://hr-portal" not in final["text"]


async def test_thanks_with_a_number_is_a_comment(bot: RunningBot):
    question, _ = await ask(bot)
    await bot.post(ev.channel_message("U2", "C1", "thanks, that helped with my 2 kids", thread_ts=question["ts"]))
    await bot.slack.async_wait_for("reactions.add", 2)  # :eyes: on the question, then :memo: on the reply
    assert await feedback_kinds(bot) == [("comment", "thanks, that helped with my 2 kids")]

"""Operating the bot: Prometheus metrics, health, and the App Home view, through the real app over HTTP."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support import slack_events as ev
from tests.support.bot_harness import RunningBot

pytestmark = pytest.mark.slow


async def get(bot: RunningBot, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(bot.url.replace("/slack/events", path)) as response:
        return response.status, await response.text()


def texts(view: dict) -> str:
    """Every text of a view's blocks, one per line."""
    out = []
    for block in view["blocks"]:
        out += [f["text"] for f in block.get("fields", [])]
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
    return "\n".join(out)


async def test_metrics_after_a_question_and_a_reaction(bot: RunningBot):
    question = ev.app_mention("U1", "C1", "<@UBOT> how do I request a new laptop?")
    await bot.post(question)
    (row,) = await bot.wait_answered(1)
    await bot.post(ev.reaction_added("U2", "+1", "C1", row["answer_ts"]))
    await asyncio.sleep(0.4)
    status, text = await get(bot, "/metrics")
    assert status == 200
    assert 'wikibot_questions_total{status="answered"} 1.0' in text
    assert 'wikibot_answer_latency_seconds_count{stage="total"} 1.0' in text
    assert 'wikibot_feedback_total{kind="rating"} 1.0' in text
    assert "wikibot_active_adapter_version 0.0" in text
    assert 'wikibot_adapters{status="rejected"} 0.0' in text


async def test_health(bot: RunningBot):
    assert await get(bot, "/healthz") == (200, '{"status": "ok"}')


async def test_app_home_for_an_empty_and_a_busy_history(bot: RunningBot):
    await bot.post({"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home", "event_ts": ev.new_ts()})
    (empty,) = await bot.slack.async_wait_for("views.publish")
    assert empty.params["user_id"] == "U1" and "*Answers*\n0 (0 in all)" in texts(empty.params["view"])

    question = ev.app_mention("U1", "C1", "<@UBOT> what is the VPN session timeout?")
    await bot.post(question)
    await bot.wait_answered(1)
    await bot.post(ev.channel_message("U3", "C1", "Wrong, it is 12 hours now.", thread_ts=question["ts"]))
    await asyncio.sleep(0.4)
    await bot.post({"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home", "event_ts": ev.new_ts()})
    calls = await bot.slack.async_wait_for("views.publish", count=2)
    busy = texts(calls[1].params["view"])
    assert "*Answers*\n1 (1 in all)" in busy and "Wrong, it is 12 hours now." in busy and "100%" in busy


async def test_a_new_assistant_thread_gets_example_questions(bot: RunningBot):
    await bot.post(ev.assistant_thread_started("U1", channel="D5", thread_ts="50.000001"))
    (call,) = await bot.slack.async_wait_for("assistant.threads.setSuggestedPrompts")
    assert (call.params["channel_id"], call.params["thread_ts"]) == ("D5", "50.000001")
    assert len(call.params["prompts"]) == 3 and all(p["message"] for p in call.params["prompts"])

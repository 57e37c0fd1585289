"""Operating the bot: Prometheus metrics, health, the App Home view, and Socket Mode, through the real app."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from bot.app import build_app
from bot.server import serve
from bot.services import BotServices
from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.sample import SAMPLE_BASE_URL
from loopback import slack_events as ev
from loopback.bot_harness import RunningBot, slack_settings
from loopback.llm_double import scripted_llm
from loopback.slack_api import FakeSlackAPI
from tests.support.socket_mode import SocketModeServer
from core.vllm_server import free_port

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
    await bot.settled()
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
    await bot.settled()
    bot.slack.set_members("C1", ["U1", "U3"])  # an admin sees corrections from conversations they are in
    await bot.post({"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home", "event_ts": ev.new_ts()})
    calls = await bot.slack.async_wait_for("views.publish", count=2)
    busy = texts(calls[1].params["view"])
    assert "*Answers*\n1 (1 in all)" in busy and "Wrong, it is 12 hours now." in busy and "100%" in busy


async def test_a_new_assistant_thread_gets_example_questions(bot: RunningBot):
    await bot.post(ev.assistant_thread_started("U1", channel="D5", thread_ts="50.000001"))
    (call,) = await bot.slack.async_wait_for("assistant.threads.setSuggestedPrompts")
    assert (call.params["channel_id"], call.params["thread_ts"]) == ("D5", "50.000001")
    assert len(call.params["prompts"]) == 3 and all(p["message"] for p in call.params["prompts"])


async def test_socket_mode_answers_without_a_public_endpoint(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder
):
    """`wikibot serve` with an app token: events arrive over Slack's WebSocket, acks go back on it, no signing."""
    app_token, port = "xapp-1-A1-1-secret", free_port()
    answer = ["Ask your manager, ", "then file an IT request [1]."]
    async with SocketModeServer() as socket, scripted_llm(answer) as llm:
        slack.socket_mode_url = socket.url
        configured = slack_settings(settings, slack, slack_app_token=app_token, slack_signing_secret=None,
                                    llm_base_url=llm, stream_answers=False)
        async with BotServices.open(configured, embedder=embedder) as services:
            serving = asyncio.create_task(serve(build_app(services), services, port))
            try:
                mention = ev.app_mention("U1", "C1", "<@UBOT> how do I request a new laptop?")
                ack = await socket.send(ev.event_callback(mention))
                (posted,) = await asyncio.to_thread(slack.wait_for, "chat.postMessage", 1, 30)
                async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    health = r.status
            finally:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
    assert set(ack) == {"envelope_id"}, "acknowledged on the socket, with nothing to say"
    (opened,) = slack.calls_to("apps.connections.open")
    assert opened.token == app_token
    assert posted.params["thread_ts"] == mention["ts"] and posted.params["channel"] == "C1"
    assert "IT request [1]" in posted.params["text"] and SAMPLE_BASE_URL in str(posted.params["blocks"])
    assert health == 200, "/healthz is still served over HTTP for the orchestrator"

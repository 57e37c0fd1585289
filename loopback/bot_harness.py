"""The real Bolt app served over HTTP on loopback, its Web API calls going to a FakeSlackAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.app import build_app
from bot.render import CONFIRM_CORRECTION_ACTION, DECLINE_CORRECTION_ACTION
from bot.server import web_app
from bot.services import BotServices
from core.config import Settings
from retrieval.embed import Embedder
from loopback import slack_events as ev
from loopback.slack_api import FakeSlackAPI

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test"


def slack_settings(settings: Settings, slack: FakeSlackAPI, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": slack.base_url,
            **overrides,
        }
    )


@dataclass
class RunningBot:
    url: str
    services: BotServices
    slack: FakeSlackAPI
    _answered: set[str] = field(default_factory=set)  # confirmation questions already answered
    _idle: set[asyncio.Task] = field(default_factory=set)  # the tasks that run while nothing is being handled

    @property
    def response_url(self) -> str:
        """A response_url that reaches the Slack double (recorded as the call "/actions/response")."""
        return self.slack.base_url.removesuffix("/api/") + "/actions/response"

    async def confirm_correction(self, user: str, thread_ts: str, yes: bool = True, timeout: float = 10) -> int:
        """Click Yes (or "No, just a comment") on the "Use this as a correction of the answer?" question the bot
        put to `user` in the thread `thread_ts`, as Slack sends it: a signed block_actions payload from `user` on
        an ephemeral message. Waits for the question (it is asked after the ack); returns the feedback id."""
        async with asyncio.timeout(timeout):
            while (asked := self._question_to(user, thread_ts)) is None:
                await asyncio.sleep(0.05)
        value, channel = asked
        self._answered.add(value)
        action = CONFIRM_CORRECTION_ACTION if yes else DECLINE_CORRECTION_ACTION
        payload = ev.block_actions(user, action, value, channel=channel, ephemeral=True,
                                   message={"ts": ev.new_ts(), "thread_ts": thread_ts}, response_url=self.response_url)
        await ev.async_post_action(self.url, payload, SIGNING_SECRET)
        return int(value)

    def _question_to(self, user: str, thread_ts: str) -> tuple[str, str] | None:
        """(feedback id, channel) of the newest unanswered confirmation question to `user` in a thread."""
        for call in reversed(self.slack.calls_to("chat.postEphemeral")):
            p = call.params
            if p.get("user") != user or p.get("thread_ts") != thread_ts:
                continue
            for block in p.get("blocks") or []:
                for element in block.get("elements", []):
                    value = str(element.get("value"))
                    if element.get("action_id") == CONFIRM_CORRECTION_ACTION and value not in self._answered:
                        return value, str(p["channel"])
        return None

    async def post(self, event: dict[str, Any], **kw: Any) -> ev.Response:
        return await ev.async_post_event(self.url, ev.event_callback(event), SIGNING_SECRET, **kw)

    async def post_body(self, body: dict[str, Any], **kw: Any) -> ev.Response:
        return await ev.async_post_event(self.url, body, SIGNING_SECRET, **kw)

    async def clear_log(self) -> None:
        """Forget earlier answers, so each test sees only its own."""
        async with self.services.index.db.connection() as conn:
            await conn.execute("TRUNCATE interactions, slack_claims, feedback_events RESTART IDENTITY CASCADE")

    async def interactions(self) -> list[dict[str, Any]]:
        async with self.services.index.db.connection() as conn:
            cur = await conn.execute("SELECT id FROM interactions ORDER BY id")
            ids = [row[0] for row in await cur.fetchall()]
        return [await self.services.answer_log.interaction(i) for i in ids]  # type: ignore[misc]

    async def settled(self, timeout: float = 30) -> None:
        """Wait until everything the requests so far set going has finished (listeners run after the ack): what
        has not happened by then will not, so a check that something did NOT happen is not made too early."""
        try:
            async with asyncio.timeout(timeout):
                while busy := {t for t in asyncio.all_tasks() if not t.done()} - self._idle - {asyncio.current_task()}:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise TimeoutError(f"still running after {timeout}s: {[t.get_coro() for t in busy]}") from None

    async def wait_answered(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until `count` answers are logged and posted (answer_ts set)."""
        async with asyncio.timeout(timeout):
            while True:
                rows = await self.interactions()
                if len([r for r in rows if r["answer_ts"]]) >= count:
                    return rows
                await asyncio.sleep(0.05)


@asynccontextmanager
async def running_bot(settings: Settings, slack: FakeSlackAPI, embedder: Embedder) -> AsyncIterator[RunningBot]:
    async with BotServices.open(settings, embedder=embedder) as services:
        runner = web.AppRunner(web_app(services, build_app(services)))  # the app's own Slack client
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        running = RunningBot(f"http://127.0.0.1:{port}/slack/events", services, slack)
        await running.clear_log()
        running._idle = asyncio.all_tasks() - {asyncio.current_task()}  # the pool's workers, the server's
        try:
            yield running
        finally:
            await runner.cleanup()

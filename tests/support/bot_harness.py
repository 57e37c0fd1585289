"""The real Bolt app served over HTTP on loopback, its Web API calls going to a FakeSlackAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app
from bot.server import web_app
from bot.services import BotServices
from retrieval.config import Settings
from retrieval.embed import Embedder
from tests.support import slack_events as ev
from tests.support.slack_api import FakeSlackAPI

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
        return [await self.services.store.interaction(i) for i in ids]  # type: ignore[misc]

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
        client = AsyncWebClient(token=settings.slack_bot_token, base_url=slack.base_url)
        runner = web.AppRunner(web_app(services, build_app(services, client=client)))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        running = RunningBot(f"http://127.0.0.1:{port}/slack/events", services, slack)
        await running.clear_log()
        try:
            yield running
        finally:
            await runner.cleanup()

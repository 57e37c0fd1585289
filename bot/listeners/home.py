"""The App Home tab: usage, feedback and adapter accuracy for the bot's owners, corrections to review for reviewers;
how to use it for others."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.home import HomeStats, home_view
from bot.listeners import reviews
from bot.services import BotServices


def register(app: AsyncApp, services: BotServices) -> None:
    async def publish_home(client: AsyncWebClient, user: str) -> None:
        is_admin = user in services.settings.admin_users
        stats = await services.home_stats() if is_admin else HomeStats()
        stats.recent_corrections = await reviews.members_only(client, user, stats.recent_corrections)
        view = home_view(stats, is_admin)
        view["blocks"] += await reviews.review_section(client, services, user)
        await client.views_publish(user_id=user, view=view)

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        await publish_home(client, event["user"])

    reviews.register(app, services, publish_home)

"""The App Home tab, when someone opens it (bot/home_tab.py publishes it)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.home_tab import publish_home
from bot.services import BotServices


def register(app: AsyncApp, services: BotServices) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await publish_home(client, services, event["user"])

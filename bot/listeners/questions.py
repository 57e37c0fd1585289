"""The @mention listener: a question to answer in its thread (bot/ask.py)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.ask import answer_question
from bot.payloads import is_user_message, to_question
from bot.services import BotServices


def register(app: AsyncApp, services: BotServices) -> None:
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                         context: AsyncBoltContext) -> None:
        if is_user_message(event):
            await answer_question(to_question(event, body, context.bot_user_id or ""), client, services)

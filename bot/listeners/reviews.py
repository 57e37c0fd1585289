"""Reviewers (WIKIBOT_REVIEWERS) approve or reject, in their App Home, the corrections the review rule holds back
(bot/home_tab.py decides who may)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.home import APPROVE_CORRECTION_ACTION, REJECT_CORRECTION_ACTION
from bot.home_tab import decide_review
from bot.services import BotServices


def register(app: AsyncApp, services: BotServices) -> None:
    async def decide(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                     verdict: str) -> None:
        await ack()
        if (value := str(action.get("value", ""))).isdigit():  # the feedback id
            await decide_review(client, services, body["user"]["id"], int(value), verdict)

    @app.action(APPROVE_CORRECTION_ACTION)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await decide(ack, body, action, client, "approved")

    @app.action(REJECT_CORRECTION_ACTION)
    async def on_reject(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await decide(ack, body, action, client, "rejected")

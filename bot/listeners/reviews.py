"""Reviewers (WIKIBOT_REVIEWERS) approve or reject the corrections the review rule holds back, in their App Home.

A reviewer sees a correction when their scope covers it ("*", its channel, a space of its sources), it is not their
own, and they are a member of the conversation it was given in (conversations.members): no view shows anyone a
question from a conversation they are not part of. The same checks run again when they click.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.feedback import is_reviewer, reviews
from bot.home import APPROVE_CORRECTION_ACTION, REJECT_CORRECTION_ACTION, review_blocks
from bot.services import BotServices

log = logging.getLogger(__name__)
Publish = Callable[[AsyncWebClient, str], Awaitable[None]]


def register(app: AsyncApp, services: BotServices, publish_home: Publish) -> None:
    """`publish_home(client, user)` shows a user's App Home again, after their decision."""

    async def decide(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                     verdict: str) -> None:
        await ack()
        value, reviewer = str(action.get("value", "")), body["user"]["id"]
        if not value.isdigit():
            return
        if await reviewable(client, services, reviewer, int(value)):
            if await services.feedback.review(int(value), reviewer, verdict):
                log.info("%s %s correction %s for training", reviewer, verdict, value)
                services.metrics.feedback.labels(f"correction_{verdict}").inc()
        else:
            log.warning("%s may not review correction %s (not a reviewer of it, or it no longer waits)", reviewer, value)
        await publish_home(client, reviewer)

    @app.action(APPROVE_CORRECTION_ACTION)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await decide(ack, body, action, client, "approved")

    @app.action(REJECT_CORRECTION_ACTION)
    async def on_reject(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await decide(ack, body, action, client, "rejected")


async def review_section(client: AsyncWebClient, services: BotServices, user: str) -> list[dict[str, Any]]:
    """The App Home blocks of the corrections that wait for `user`; none for someone who reviews nothing."""
    if not is_reviewer(user, services.settings.reviewers):
        return []
    return review_blocks(await reviewable(client, services, user))


async def reviewable(
    client: AsyncWebClient, services: BotServices, user: str, feedback_id: int | None = None
) -> list[dict[str, Any]]:
    """The waiting corrections `user` may review (or `feedback_id` alone, if they may)."""
    reviewers = services.settings.reviewers
    waiting = [
        c for c in await services.feedback.corrections_to_review(feedback_id)
        if c["user_id"] != user and reviews(user, c["channel_id"], c["spaces"], reviewers)
    ]  # fmt: skip
    return await members_only(client, user, waiting)


async def members_only(client: AsyncWebClient, user: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `rows` (each with its `channel_id`) from conversations `user` is a member of: no view shows anyone a
    question from a conversation they are not part of."""
    member_of = {channel: await is_member(client, channel, user) for channel in {r["channel_id"] for r in rows}}
    return [r for r in rows if member_of[r["channel_id"]]]


async def is_member(client: AsyncWebClient, channel: str | None, user: str) -> bool:
    """Whether `user` is in the conversation (False when Slack cannot say: the bot left it, it is gone...)."""
    if not channel:
        return False
    try:
        async for page in await client.conversations_members(channel=channel, limit=1000):
            if user in page.get("members", []):
                return True
    except SlackApiError as exc:
        log.info("cannot list the members of %s: %s", channel, exc.response.get("error"))
    return False

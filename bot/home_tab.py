"""A user's App Home tab, published: usage, feedback and adapter figures for the bot's owners (WIKIBOT_ADMIN_USERS),
the corrections that wait for a reviewer (WIKIBOT_REVIEWERS), how to use the bot for everyone; and a reviewer's
decision on a correction.

A reviewer sees a correction when their scope covers it ("*", its channel, a space of its sources), it is not their
own, and they are a member of the conversation it was given in (conversations.members): no view shows anyone a
question from a conversation they are not part of. The same checks run again when they click.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.feedback import is_reviewer, reviews
from bot.home import HomeStats, home_view, review_blocks
from bot.services import BotServices

log = logging.getLogger(__name__)


async def publish_home(client: AsyncWebClient, services: BotServices, user: str) -> None:
    is_admin = user in services.settings.admin_users
    stats = await services.home_stats() if is_admin else HomeStats()
    stats.recent_corrections = await members_only(client, user, stats.recent_corrections)
    view = home_view(stats, is_admin)
    view["blocks"] += await review_section(client, services, user)
    await client.views_publish(user_id=user, view=view)


async def decide_review(client: AsyncWebClient, services: BotServices, reviewer: str, feedback_id: int,
                        verdict: str) -> None:
    """A reviewer approves or rejects a correction for training, if they may; their App Home then shows the rest."""
    if await reviewable(client, services, reviewer, feedback_id):
        if await services.feedback.review(feedback_id, reviewer, verdict):
            log.info("%s %s correction %s for training", reviewer, verdict, feedback_id)
            services.metrics.feedback.labels(f"correction_{verdict}").inc()
    else:
        log.warning("%s may not review correction %s (not a reviewer of it, or it no longer waits)", reviewer,
                    feedback_id)
    await publish_home(client, services, reviewer)


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

"""The Bolt app: one factory that builds it from the settings and registers every listener."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners import assistant, feedback, home, messages, questions, reviews
from bot.services import BotServices
from core.config import Settings


SLACK_RATE_LIMIT_RETRIES = 2


log = logging.getLogger(__name__)
NO_ADMINS = (
    "WIKIBOT_ADMIN_USERS is empty: no one sees usage and feedback in the App Home. Set it to Slack member ids "
    """(a profile's ⋮ menu: Copy member ID), e.g. WIKIBOT_ADMIN_USERS='["U0123ABCD"]'"""
)


class SlackNotConfigured(ValueError):
    pass


def slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: calls that Slack rate-limits (HTTP 429) are retried after its Retry-After, besides
    slack_sdk's default retry of connection errors."""
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=SLACK_RATE_LIMIT_RETRIES))
    return client


def build_app(services: BotServices, client: AsyncWebClient | None = None) -> AsyncApp:
    settings = services.settings
    missing = [
        name
        for name, value in (
            ("WIKIBOT_SLACK_BOT_TOKEN", settings.slack_bot_token),
            ("WIKIBOT_SLACK_SIGNING_SECRET or WIKIBOT_SLACK_APP_TOKEN",
             settings.slack_signing_secret or settings.slack_app_token),
        )
        if not value
    ]
    if missing:
        raise SlackNotConfigured(
            f"Slack is not configured: set {' and '.join(missing)} (see deploy/slack/README.md for how to get them)"
        )
    if not settings.admin_users:
        log.warning(NO_ADMINS)
    app = AsyncApp(
        client=client or slack_client(settings),
        signing_secret=settings.slack_signing_secret or "",  # Socket Mode requests are not signed
        process_before_response=False,  # ack at once; answers are worked out after the ack
    )
    # Bolt tries the listeners in order until one matches, evaluating each one's matchers on the way (about 0.1 ms
    # each): mentions, the most frequent and latency-sensitive, are matched first.
    questions.register(app, services)
    feedback.register(app, services)  # its `message` subtype listeners before the plain `message` one: first match runs
    home.register(app, services)
    reviews.register(app, services)
    assistant.register(app, settings)
    messages.register(app, services)
    return app

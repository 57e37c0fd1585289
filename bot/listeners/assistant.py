"""Slack's assistant threads (the AI app side panel): greet a new thread with example questions."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.payloads import channel_allowed
from core.config import Settings

SUGGESTED_PROMPTS = [
    {"title": "Find a policy", "message": "What is our policy on working remotely from abroad?"},
    {"title": "Who handles it?", "message": "Which team handles water damage claims?"},
    {"title": "How do I...?", "message": "How do I get access to a new system?"},
]


def register(app: AsyncApp, settings: Settings) -> None:
    @app.event("assistant_thread_started")
    async def on_thread_started(event: dict[str, Any], client: AsyncWebClient) -> None:
        thread = event["assistant_thread"]
        if not channel_allowed(thread["channel_id"], True, settings):
            return  # no example questions where questions are not answered
        try:
            await client.assistant_threads_setSuggestedPrompts(
                channel_id=thread["channel_id"],
                thread_ts=thread["thread_ts"],
                title="Ask me about the wiki: I answer with links to the pages I used.",
                prompts=SUGGESTED_PROMPTS,
            )
        except SlackApiError:
            pass  # suggestions are a courtesy; the thread works without them

"""The one listener for plain `message` events (Bolt runs only the first matching listener):
DMs and follow-ups in answered threads are questions; other replies there are feedback."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.ask import answer_question
from bot.feedback_flow import record_reply
from bot.payloads import asks_the_bot, is_user_message, mentions, to_question
from bot.services import BotServices


def register(app: AsyncApp, services: BotServices) -> None:
    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                         context: AsyncBoltContext) -> None:
        bot_user = context.bot_user_id or ""
        if not is_user_message(event):
            return  # bot posts, joins and other subtypes; edits/deletions have their own listeners
        question = to_question(event, body, bot_user)
        text = event.get("text", "")
        if not question.is_dm and mentions(text, bot_user):
            return  # app_mention delivers it
        if question.in_thread and await services.answer_log.bot_answered_thread(question.channel, question.thread_ts):
            if asks_the_bot(text, bot_user, services.settings.followup_rule):
                await answer_question(question, client, services)
            else:
                await record_reply(event, body, client, services)
        elif question.is_dm:
            await answer_question(question, client, services)

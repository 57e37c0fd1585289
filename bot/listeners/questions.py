"""Listeners for questions: @mentions in channels, direct messages, and follow-ups in answered threads."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import AskContext
from bot.payloads import (
    Question,
    asks_the_bot,
    channel_allowed,
    is_user_message,
    mentions,
    spaces_for,
    to_question,
)
from bot.services import BotServices
from bot.slack_reply import ThreadReply

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: BotServices) -> None:
    settings = services.settings

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                         context: AsyncBoltContext) -> None:
        if is_user_message(event):
            await answer_question(to_question(event, body, context.bot_user_id or ""), client, services)

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                         context: AsyncBoltContext) -> None:
        """DMs are questions; a reply in a thread the bot answered may be a follow-up question.

        Anything else (edits, deletions, bot posts, feedback replies) is for the feedback listeners.
        """
        bot_user = context.bot_user_id or ""
        if not is_user_message(event):
            return
        question = to_question(event, body, bot_user)
        if not question.is_dm and mentions(event.get("text", ""), bot_user):
            return  # app_mention delivers it
        if question.in_thread:
            if not await services.store.bot_answered_thread(question.channel, question.thread_ts):
                if not question.is_dm:
                    return
            elif not asks_the_bot(event.get("text", ""), bot_user, settings.followup_rule):
                return  # feedback on the answer, not a question
        elif not question.is_dm:
            return
        await answer_question(question, client, services)


async def answer_question(question: Question, client: AsyncWebClient, services: BotServices) -> None:
    settings = services.settings
    if not channel_allowed(question.channel, question.is_dm, settings.allowed_channels, settings.allow_dms):
        log.info("not answering in %s: not in WIKIBOT_ALLOWED_CHANNELS", question.channel)
        return
    if not question.text:
        return
    if not await services.store.claim_message(question.channel, question.ts, question.event_id):
        log.info("message %s/%s already taken: retry or duplicate delivery", question.channel, question.ts)
        return
    reply = ThreadReply(client, question, stream=settings.stream_answers)
    await reply.show_working()
    history = (
        await services.store.thread_history(question.channel, question.thread_ts, settings.history_turns)
        if question.in_thread
        else []
    )
    answer = await services.answerer.answer(
        question.text,
        spaces=spaces_for(question.channel, settings.channel_spaces),
        history=history,
        context=AskContext(
            source="slack",
            team_id=question.team,
            channel_id=question.channel,
            user_id=question.user,
            thread_ts=question.thread_ts,
            question_ts=question.ts,
        ),
        on_token=reply.append,
    )
    answer_ts = await reply.finish(answer)
    await services.store.set_answer_ts(answer.interaction_id, answer_ts)

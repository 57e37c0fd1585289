"""Questions: the @mention listener, and answering a question (also for DMs and thread follow-ups)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import AskContext
from bot.payloads import Question, channel_allowed, is_user_message, spaces_for, to_question
from bot.services import BotServices
from bot.slack_reply import ThreadReply

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: BotServices) -> None:
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                         context: AsyncBoltContext) -> None:
        if is_user_message(event):
            await answer_question(to_question(event, body, context.bot_user_id or ""), client, services)


async def answer_question(question: Question, client: AsyncWebClient, services: BotServices) -> None:
    settings = services.settings
    if not channel_allowed(question.channel, question.is_dm, settings):
        setting = "WIKIBOT_ALLOW_DMS and WIKIBOT_DM_SPACES" if question.is_dm else "WIKIBOT_ALLOWED_CHANNELS"
        log.info("not answering in %s: not allowed by %s", question.channel, setting)
        return
    if not question.text:
        return
    await services.acks.wait()  # the mentions that came with this one are acked first
    reply: ThreadReply | None = None
    try:
        if not await services.store.claim_message(question.channel, question.ts, question.event_id):
            log.info("message %s/%s already taken: retry or duplicate delivery", question.channel, question.ts)
            return
        reply = ThreadReply(client, question, stream=settings.stream_answers, link_hosts=await services.wiki_hosts())
        reply.start_working()
        history = (
            await services.store.thread_history(question.channel, question.thread_ts, settings.history_turns)
            if question.in_thread
            else []
        )
        answer = await services.answerer.answer(
            question.text,
            spaces=spaces_for(question.channel, question.is_dm, settings),
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
        services.metrics.observe_answer(answer)
        if answer.interaction_id is not None:
            await services.store.set_answer_ts(answer.interaction_id, answer_ts)
    except Exception:  # never silent: the question was claimed, so Slack's retries cannot help
        log.exception("could not answer message %s/%s", question.channel, question.ts)
        await (reply or ThreadReply(client, question, stream=False)).give_up()
    finally:
        if reply is not None:
            await reply.stop_working()

"""A question from Slack answered in its thread: claimed once, with the thread's history, through the answer
pipeline (bot/answer.py), streamed into the thread reply (bot/slack_reply.py); never silent."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.payloads import Question, channel_allowed, spaces_for
from bot.services import BotServices
from bot.slack_reply import ThreadReply
from core.answer_log import AskContext

log = logging.getLogger(__name__)


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
        if not await services.answer_log.claim_message(question.channel, question.ts, question.event_id):
            log.info("message %s/%s already taken: retry or duplicate delivery", question.channel, question.ts)
            return
        reply = ThreadReply(client, question, stream=settings.stream_answers, link_hosts=await services.wiki_hosts())
        reply.start_working()
        history = (
            await services.answer_log.thread_history(question.channel, question.thread_ts, settings.history_turns)
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
            await services.answer_log.set_answer_ts(answer.interaction_id, answer_ts)
    except Exception:  # never silent: the question was claimed, so Slack's retries cannot help
        log.exception("could not answer message %s/%s", question.channel, question.ts)
        await (reply or ThreadReply(client, question, stream=False)).give_up()
    finally:
        if reply is not None:
            await reply.stop_working()

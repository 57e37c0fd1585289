"""What the bot does with feedback from Slack once a listener has parsed it: a rating, a thread reply (and its
edit), the author's answer to "Use this as a correction?", the correction form; and what it tells the giver.
Everything is stored against the logged answer it is about (core/answer_log.py).

A reply that reads as a correction counts only once its author says so: the bot asks them at once, in an ephemeral
message with two buttons (CONFIRM_CORRECTION_ACTION, DECLINE_CORRECTION_ACTION, value: the feedback id). The
correction form is explicit: confirmed as it is sent. Either may then wait for a reviewer (bot/feedback.py's rule).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.feedback import classify_reply, describe_reasons, rating_value, review_reasons
from bot.payloads import CorrectionForm
from bot.render import CONFIRM_QUESTION, confirm_correction_blocks, correction_view
from bot.services import BotServices
from core.answer_log import AnswerGone, FeedbackLog

log = logging.getLogger(__name__)
THANKS = {
    "accepted": "Thanks for the correction! It is saved with this answer and will be used in the next training run.",
    "pending": "Thanks for the correction! It is saved with this answer. A reviewer checks it before the next "
    "training run uses it: {reasons}.",
    "comment": "Kept as a comment: it stays with the answer for people to read, and is not used for training.",
    "not_yours": "Only the person who wrote this reply can say what it is.",
    "rating": "Thanks for the feedback! It will be used in the next training run.",
    "gone": "This answer is no longer stored (it was deleted on request), so feedback on it cannot be saved.",
}


async def rate(services: BotServices, event: dict[str, Any], body: dict[str, Any], retract: bool) -> None:
    """A reaction added to (or removed from) one of the bot's answers: a vote, if the emoji is one."""
    settings, store = services.settings, services.feedback
    item = event.get("item", {})
    value = rating_value(event.get("reaction", ""), settings.positive_reactions, settings.negative_reactions)
    if item.get("type") != "message" or value is None:
        return
    interaction = await store.interaction_for_answer(item["channel"], item["ts"])
    if interaction is None or not await store.first_delivery(body.get("event_id")):
        return  # not one of the bot's answers, or a retry already applied
    via = "reaction:" + event["reaction"].split("::")[0]
    await store.set_rating(interaction, event["user"], via, value, event.get("event_ts"), retract=retract)
    services.metrics.feedback.labels("rating_retracted" if retract else "rating").inc()


async def reply_edited(services: BotServices, client: AsyncWebClient, channel: str, message: dict[str, Any],
                       event_ts: str | None) -> None:
    """An edit: a reply its author has not confirmed yet is read again (and its author asked if it now reads
    as a correction); the review reasons always follow the text."""
    text = message.get("text", "")
    reasons = review_reasons(text, await services.wiki_hosts())
    edited = await services.feedback.edit_reply(
        channel, message.get("ts", ""), classify_reply(text), text, event_ts, reasons
    )
    if edited and not edited.confirmed and edited.kind == "correction" and edited.previous_kind == "comment":
        await ask_author(client, edited.user_id, channel, message.get("thread_ts"), edited.id)


async def button_rating(services: BotServices, client: AsyncWebClient, user: str, interaction: int, value: int,
                        where: dict[str, str | None], action_ts: str | None) -> None:
    """A click on the answer's feedback buttons."""
    try:
        await services.feedback.set_rating(interaction, user, "button", value, action_ts)
    except AnswerGone:
        await answer_gone(client, user, interaction, **where)
        return
    services.metrics.feedback.labels("rating").inc()
    await thank(client, user, **where, text=THANKS["rating"])


async def open_correction_form(services: BotServices, client: AsyncWebClient, user: str, interaction: int,
                               where: dict[str, str | None], trigger_id: str) -> None:
    """The correction button: the form, listing the answer's sources to pick the right one from."""
    sources = await services.feedback.interaction_sources(interaction)
    if sources is None:
        await answer_gone(client, user, interaction, **where)
        return
    view = correction_view(sources, {"interaction_id": interaction, **where})
    await client.views_open(trigger_id=trigger_id, view=view)


async def save_form_correction(services: BotServices, client: AsyncWebClient, user: str, form: CorrectionForm,
                               view_id: str) -> None:
    """A correction sent through the form: confirmed as it is sent."""
    reasons = review_reasons(form.text, await services.wiki_hosts())
    try:
        feedback_id = await services.feedback.save_modal_correction(
            form.interaction_id, user, form.text, form.source_n, reasons, view_id
        )
    except AnswerGone:
        await answer_gone(client, user, form.interaction_id, form.channel, form.thread_ts)
        return
    if feedback_id is None:
        log.info("correction form %s sent again: recorded once", view_id)
        return
    services.metrics.feedback.labels("correction").inc()
    thanks = await correction_thanks(services.feedback, feedback_id)
    await thank(client, user, form.channel, form.thread_ts, thanks)


async def record_reply(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                       services: BotServices) -> None:
    """A reply in the thread of an answer that asks nothing: a correction or a comment on that answer."""
    store = services.feedback
    channel, ts = event["channel"], event["ts"]
    interaction = await store.latest_answer_before(channel, event["thread_ts"], ts)
    if interaction is None or not await store.first_delivery(body.get("event_id")):
        return
    text = event.get("text", "")
    kind = classify_reply(text)
    reasons = review_reasons(text, await services.wiki_hosts())
    feedback_id = await store.save_reply(
        interaction, event["user"], kind, text, channel, ts, event.get("event_ts") or ts, reasons
    )
    if feedback_id is None:
        log.info("reply %s/%s delivered again: recorded once", channel, ts)
        return
    services.metrics.feedback.labels(kind).inc()
    try:
        await client.reactions_add(channel=channel, timestamp=ts, name=services.settings.feedback_ack_reaction)
    except SlackApiError as exc:
        log.info("could not acknowledge feedback: %s", exc.response.get("error"))
    if kind == "correction":
        await ask_author(client, event["user"], channel, event["thread_ts"], feedback_id)


async def ask_author(client: AsyncWebClient, user: str, channel: str, thread_ts: str | None, feedback_id: int) -> None:
    """Ask the author of a reply that reads as a correction whether it is one (an ephemeral with two buttons)."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=CONFIRM_QUESTION,
                                        blocks=confirm_correction_blocks(feedback_id))
    except SlackApiError as exc:
        log.warning("could not ask %s to confirm correction %d: %s", user, feedback_id, exc.response.get("error"))


async def settle_reply(services: BotServices, feedback_id: int, user: str, kind: str,
                       respond: AsyncRespond | None) -> None:
    """The author's answer to "Use this as a correction?": record it, and say what happens now in its place."""
    if not await services.feedback.confirm_reply(feedback_id, user, kind):
        log.info("%s cannot confirm feedback %d: not their reply, or deleted", user, feedback_id)
        await replace_ephemeral(respond, THANKS["not_yours"])
        return
    services.metrics.feedback.labels(f"{kind}_confirmed").inc()
    text = await correction_thanks(services.feedback, feedback_id) if kind == "correction" else THANKS["comment"]
    await replace_ephemeral(respond, text)


async def correction_thanks(store: FeedbackLog, feedback_id: int) -> str:
    """What the author of a confirmed correction is told: used in the next run, or first seen by a reviewer and why."""
    status = await store.correction_status(feedback_id)
    if status is not None and status.status == "pending":
        return THANKS["pending"].format(reasons=describe_reasons(status.reasons))
    return THANKS["accepted"]


async def replace_ephemeral(respond: AsyncRespond | None, text: str) -> None:
    """Replace the message a button was clicked on (through its response_url); never fatal."""
    if respond is None:
        return
    try:
        await respond(text=text, replace_original=True)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("could not answer through the response_url: %s", exc)


async def answer_gone(client: AsyncWebClient, user: str, interaction: int, channel: str | None,
                      thread_ts: str | None) -> None:
    """Tell someone giving feedback on a deleted answer that it cannot be saved."""
    log.info("feedback of %s on answer %d not saved: the answer is no longer stored", user, interaction)
    await thank(client, user, channel, thread_ts, THANKS["gone"])


async def thank(client: AsyncWebClient, user: str, channel: str | None, thread_ts: str | None, text: str) -> None:
    """A thank-you only the giver sees, in the answer's thread; never fatal."""
    if not channel:
        return
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
    except SlackApiError as exc:
        log.info("could not thank for feedback: %s", exc.response.get("error"))

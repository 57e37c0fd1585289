"""Listeners for feedback on answers: reactions, thread replies (and their edits/deletions), the feedback
buttons, and the correction modal. Everything is stored against the logged answer it is about.

A reply that reads as a correction counts only once its author says so: the bot asks them at once, in an ephemeral
message with two buttons (CONFIRM_CORRECTION_ACTION, DECLINE_CORRECTION_ACTION, value: the feedback id). The
correction form is explicit: confirmed as it is sent. Either may then wait for a reviewer (bot/feedback.py's rule).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.feedback import classify_reply, describe_reasons, rating_value, review_reasons
from bot.feedback_store import AnswerGone, FeedbackStore
from bot.render import (
    CONFIRM_CORRECTION_ACTION,
    CONFIRM_QUESTION,
    CORRECTION_ACTION,
    DECLINE_CORRECTION_ACTION,
    FEEDBACK_ACTION,
    confirm_correction_blocks,
)
from bot.services import BotServices

log = logging.getLogger(__name__)
CORRECTION_VIEW = "correction_modal"
NO_SOURCE = "0"
THANKS = {
    "accepted": "Thanks for the correction! It is saved with this answer and will be used in the next training run.",
    "pending": "Thanks for the correction! It is saved with this answer. A reviewer checks it before the next "
    "training run uses it: {reasons}.",
    "comment": "Kept as a comment: it stays with the answer for people to read, and is not used for training.",
    "not_yours": "Only the person who wrote this reply can say what it is.",
    "rating": "Thanks for the feedback! It will be used in the next training run.",
    "gone": "This answer is no longer stored (it was deleted on request), so feedback on it cannot be saved.",
}


def register(app: AsyncApp, services: BotServices) -> None:
    """Register before the generic `message` listener: Bolt runs the first listener that matches."""
    settings = services.settings
    store = services.feedback

    async def rate(event: dict[str, Any], body: dict[str, Any], retract: bool) -> None:
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

    @app.event("reaction_added")
    async def on_reaction_added(event: dict[str, Any], body: dict[str, Any]) -> None:
        await rate(event, body, retract=False)

    @app.event("reaction_removed")
    async def on_reaction_removed(event: dict[str, Any], body: dict[str, Any]) -> None:
        await rate(event, body, retract=True)

    @app.event({"type": "message", "subtype": "message_changed"})
    async def on_edit(event: dict[str, Any], client: AsyncWebClient) -> None:
        """An edit: a reply its author has not confirmed yet is read again (and its author asked if it now reads
        as a correction); the review reasons always follow the text."""
        message = event.get("message", {})
        text = message.get("text", "")
        reasons = review_reasons(text, await services.wiki_hosts())
        edited = await store.edit_reply(
            event["channel"], message.get("ts", ""), classify_reply(text), text, event.get("event_ts"), reasons
        )
        if edited and not edited.confirmed and edited.kind == "correction" and edited.previous_kind == "comment":
            await ask_author(client, edited.user_id, event["channel"], message.get("thread_ts"), edited.id)

    @app.event({"type": "message", "subtype": "message_deleted"})
    async def on_delete(event: dict[str, Any]) -> None:
        await store.retract_reply(event["channel"], event.get("deleted_ts", ""))

    @app.action(FEEDBACK_ACTION)
    async def on_feedback_buttons(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                                  client: AsyncWebClient) -> None:
        await ack()
        verdict, _, interaction = str(action.get("value", "")).partition(":")
        if verdict not in ("good", "bad") or not interaction.isdigit():
            return
        value = 1 if verdict == "good" else -1
        try:
            await store.set_rating(int(interaction), body["user"]["id"], "button", value, action.get("action_ts"))
        except AnswerGone:
            await answer_gone(client, body["user"]["id"], int(interaction), **message_location(body))
            return
        services.metrics.feedback.labels("rating").inc()
        await thank(client, body["user"]["id"], **message_location(body), text=THANKS["rating"])

    @app.action(CORRECTION_ACTION)
    async def on_correction_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                                   client: AsyncWebClient) -> None:
        await ack()
        interaction = int(action["value"])
        sources = await store.interaction_sources(interaction)
        if sources is None:
            await answer_gone(client, body["user"]["id"], interaction, **message_location(body))
            return
        metadata = {"interaction_id": interaction, **message_location(body)}
        await client.views_open(trigger_id=body["trigger_id"], view=correction_view(sources, metadata))

    @app.action(CONFIRM_CORRECTION_ACTION)
    async def on_confirmed(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                           respond: AsyncRespond | None) -> None:
        await ack()
        await settle_reply(services, body, action, "correction", respond)

    @app.action(DECLINE_CORRECTION_ACTION)
    async def on_declined(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                          respond: AsyncRespond | None) -> None:
        await ack()
        await settle_reply(services, body, action, "comment", respond)

    @app.view(CORRECTION_VIEW)
    async def on_correction_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                                      client: AsyncWebClient) -> None:
        values = view["state"]["values"]
        text = (values["answer"]["text"].get("value") or "").strip()
        if not text:
            await ack(response_action="errors", errors={"answer": "Write what the answer should say."})
            return
        await ack()
        metadata = json.loads(view["private_metadata"])
        chosen = (values["source"]["choice"].get("selected_option") or {}).get("value", NO_SOURCE)
        source_n = int(chosen) if chosen != NO_SOURCE else None
        user = body["user"]["id"]
        reasons = review_reasons(text, await services.wiki_hosts())
        try:
            feedback_id = await store.save_modal_correction(
                metadata["interaction_id"], user, text, source_n, reasons, view["id"]
            )
        except AnswerGone:
            where = metadata.get("channel"), metadata.get("thread_ts")
            await answer_gone(client, user, metadata["interaction_id"], *where)
            return
        if feedback_id is None:
            log.info("correction form %s sent again: recorded once", view["id"])
            return
        services.metrics.feedback.labels("correction").inc()
        thanks = await correction_thanks(store, feedback_id)
        await thank(client, user, metadata.get("channel"), metadata.get("thread_ts"), thanks)


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


async def settle_reply(services: BotServices, body: dict[str, Any], action: dict[str, Any], kind: str,
                       respond: AsyncRespond | None) -> None:
    """The author's answer to "Use this as a correction?": record it, and say what happens now in its place."""
    value = str(action.get("value", ""))
    if not value.isdigit():
        return
    feedback_id, user = int(value), body["user"]["id"]
    if not await services.feedback.confirm_reply(feedback_id, user, kind):
        log.info("%s cannot confirm feedback %d: not their reply, or deleted", user, feedback_id)
        await replace_ephemeral(respond, THANKS["not_yours"])
        return
    services.metrics.feedback.labels(f"{kind}_confirmed").inc()
    text = await correction_thanks(services.feedback, feedback_id) if kind == "correction" else THANKS["comment"]
    await replace_ephemeral(respond, text)


async def correction_thanks(store: FeedbackStore, feedback_id: int) -> str:
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


def message_location(body: dict[str, Any]) -> dict[str, str | None]:
    message = body.get("message") or {}
    return {
        "channel": (body.get("channel") or {}).get("id"),
        "thread_ts": message.get("thread_ts") or message.get("ts"),
    }


async def thank(client: AsyncWebClient, user: str, channel: str | None, thread_ts: str | None, text: str) -> None:
    """A thank-you only the giver sees, in the answer's thread; never fatal."""
    if not channel:
        return
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
    except SlackApiError as exc:
        log.info("could not thank for feedback: %s", exc.response.get("error"))


def correction_view(sources: list[dict[str, Any]], metadata: dict[str, Any]) -> dict[str, Any]:
    """The 'suggest a correction' modal: the right answer, and which of the sources was the right one."""
    options = [
        {
            "text": {"type": "plain_text", "text": f"[{s['n']}] {s['title']} › {s['section']}"[:75]},
            "value": str(s["n"]),
        }
        for s in sources[:99]
    ] + [{"text": {"type": "plain_text", "text": "None of these"}, "value": NO_SOURCE}]
    return {
        "type": "modal",
        "callback_id": CORRECTION_VIEW,
        "private_metadata": json.dumps(metadata),
        "title": {"type": "plain_text", "text": "Suggest a correction"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": "What should the answer say?"},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True, "max_length": 3000},
            },
            {
                "type": "input",
                "block_id": "source",
                "optional": True,
                "label": {"type": "plain_text", "text": "Which source has the right answer?"},
                "element": {"type": "static_select", "action_id": "choice", "options": options},
            },
        ],
    }

"""Listeners for feedback on answers: reactions, thread replies (and their edits/deletions), the feedback
buttons, and the correction modal. Everything is stored against the logged answer it is about."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.feedback import classify_reply, rating_value
from bot.render import CORRECTION_ACTION, FEEDBACK_ACTION
from bot.services import BotServices

log = logging.getLogger(__name__)
CORRECTION_VIEW = "correction_modal"
NO_SOURCE = "0"
THANKS = {
    "correction": "Thanks for the correction! It is saved with this answer and will be used in the next training run.",
    "rating": "Thanks for the feedback! It will be used in the next training run.",
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
    async def on_edit(event: dict[str, Any]) -> None:
        message = event.get("message", {})
        text = message.get("text", "")
        await store.edit_reply(event["channel"], message.get("ts", ""), classify_reply(text), text, event.get("event_ts"))

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
        await store.set_rating(int(interaction), body["user"]["id"], "button", value, action.get("action_ts"))
        services.metrics.feedback.labels("rating").inc()
        await thank(client, body["user"]["id"], **message_location(body), text=THANKS["rating"])

    @app.action(CORRECTION_ACTION)
    async def on_correction_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                                   client: AsyncWebClient) -> None:
        await ack()
        interaction = int(action["value"])
        sources = await store.interaction_sources(interaction) or []
        metadata = {"interaction_id": interaction, **message_location(body)}
        await client.views_open(trigger_id=body["trigger_id"], view=correction_view(sources, metadata))

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
        await store.save_modal_correction(metadata["interaction_id"], user, text, source_n)
        services.metrics.feedback.labels("correction").inc()
        await thank(client, user, metadata.get("channel"), metadata.get("thread_ts"), THANKS["correction"])


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
    await store.save_reply(interaction, event["user"], kind, text, channel, ts, event.get("event_ts") or ts)
    services.metrics.feedback.labels(kind).inc()
    try:
        await client.reactions_add(channel=channel, timestamp=ts, name=services.settings.feedback_ack_reaction)
    except SlackApiError as exc:
        log.info("could not acknowledge feedback: %s", exc.response.get("error"))
    if kind == "correction":
        await thank(client, event["user"], channel, event["thread_ts"], THANKS["correction"])


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

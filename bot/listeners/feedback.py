"""Listeners for feedback on answers: reactions, thread replies' edits and deletions, the feedback buttons, the
author's Yes/No on "Use this as a correction?", and the correction form. They parse; bot/feedback_flow.py acts.
(A thread reply itself arrives as a `message`: bot/listeners/messages.py.)"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import feedback_flow as flow
from bot.payloads import correction_form, message_location
from bot.render import (
    CONFIRM_CORRECTION_ACTION,
    CORRECTION_ACTION,
    CORRECTION_VIEW,
    DECLINE_CORRECTION_ACTION,
    FEEDBACK_ACTION,
)
from bot.services import BotServices


def register(app: AsyncApp, services: BotServices) -> None:
    """Register before the generic `message` listener: Bolt runs the first listener that matches."""

    @app.event("reaction_added")
    async def on_reaction_added(event: dict[str, Any], body: dict[str, Any]) -> None:
        await flow.rate(services, event, body, retract=False)

    @app.event("reaction_removed")
    async def on_reaction_removed(event: dict[str, Any], body: dict[str, Any]) -> None:
        await flow.rate(services, event, body, retract=True)

    @app.event({"type": "message", "subtype": "message_changed"})
    async def on_edit(event: dict[str, Any], client: AsyncWebClient) -> None:
        await flow.reply_edited(services, client, event["channel"], event.get("message", {}), event.get("event_ts"))

    @app.event({"type": "message", "subtype": "message_deleted"})
    async def on_delete(event: dict[str, Any]) -> None:
        await services.feedback.retract_reply(event["channel"], event.get("deleted_ts", ""))

    @app.action(FEEDBACK_ACTION)
    async def on_feedback_buttons(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                                  client: AsyncWebClient) -> None:
        await ack()
        verdict, _, interaction = str(action.get("value", "")).partition(":")
        if verdict in ("good", "bad") and interaction.isdigit():
            await flow.button_rating(services, client, body["user"]["id"], int(interaction),
                                     1 if verdict == "good" else -1, message_location(body), action.get("action_ts"))

    @app.action(CORRECTION_ACTION)
    async def on_correction_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                                   client: AsyncWebClient) -> None:
        await ack()
        await flow.open_correction_form(services, client, body["user"]["id"], int(action["value"]),
                                        message_location(body), body["trigger_id"])

    async def settle(body: dict[str, Any], action: dict[str, Any], kind: str, respond: AsyncRespond | None) -> None:
        if (value := str(action.get("value", ""))).isdigit():  # the feedback id
            await flow.settle_reply(services, int(value), body["user"]["id"], kind, respond)

    @app.action(CONFIRM_CORRECTION_ACTION)
    async def on_confirmed(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                           respond: AsyncRespond | None) -> None:
        await ack()
        await settle(body, action, "correction", respond)

    @app.action(DECLINE_CORRECTION_ACTION)
    async def on_declined(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                          respond: AsyncRespond | None) -> None:
        await ack()
        await settle(body, action, "comment", respond)

    @app.view(CORRECTION_VIEW)
    async def on_correction_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                                      client: AsyncWebClient) -> None:
        form = correction_form(view)
        if not form.text:
            await ack(response_action="errors", errors={"answer": "Write what the answer should say."})
            return
        await ack()
        await flow.save_form_correction(services, client, body["user"]["id"], form, view["id"])

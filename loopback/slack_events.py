"""Builders for Slack's real Events API / interactivity payloads, and a Slack-style signed sender.

Inner-event builders return the ``event`` dict; wrap it with ``event_callback``. Omitted ``ts`` values
are generated (strictly increasing). ``post_event``/``post_action`` sign and POST like Slack does:
JSON for events, form-encoded ``payload=<json>`` for interactivity.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

Json = dict[str, Any]
Response = tuple[int, dict[str, str], str]  # (status, headers, body)
TEAM_ID, APP_ID, BOT_USER_ID, BOT_ID = "T1", "A1", "UBOT", "BBOT"
JSON_TYPE, FORM_TYPE = "application/json", "application/x-www-form-urlencoded"

_ts_lock = threading.Lock()
_last_us = 0


def new_ts() -> str:
    """A fresh Slack-style ``ts`` ("seconds.micros"), strictly increasing within the process."""
    global _last_us
    with _ts_lock:
        _last_us = max(time.time_ns() // 1000, _last_us + 1)
        return f"{_last_us // 1_000_000}.{_last_us % 1_000_000:06d}"


def _rich_text(text: str) -> list[Json]:
    """The rich_text block Slack attaches to user messages (``<@U..>`` mentions become user elements)."""
    parts = re.split(r"<@([A-Z0-9]+)>", text)
    elements = [{"type": "user", "user_id": p} if i % 2 else {"type": "text", "text": p} for i, p in enumerate(parts)]
    section = {"type": "rich_text_section", "elements": [e for e in elements if e.get("text") != ""]}
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:5], "elements": [section]}]


def event_callback(
    event: Json,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    bot_user_id: str = BOT_USER_ID,
) -> Json:
    """The outer ``event_callback`` envelope, with ``authorizations`` for the bot user."""
    auth = {"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id, "is_bot": True}
    body: Json = {"token": "verification_token", "team_id": team_id, "context_team_id": team_id}
    body |= {"context_enterprise_id": None, "api_app_id": api_app_id, "event": event, "type": "event_callback"}
    body |= {"event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time())}
    body |= {"authorizations": [{**auth, "is_enterprise_install": False}], "is_ext_shared_channel": False}
    return {**body, "event_context": f"4-{uuid.uuid4().hex}"}


def _message(kind: str, user: str, channel: str, text: str, ts: str | None, thread_ts: str | None) -> Json:
    ts = ts or new_ts()
    event: Json = {"type": kind, "client_msg_id": str(uuid.uuid4()), "user": user, "text": text}
    event |= {"blocks": _rich_text(text), "team": TEAM_ID, "ts": ts, "channel": channel, "event_ts": ts}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def app_mention(
    user: str, channel: str, text: str, ts: str | None = None, thread_ts: str | None = None, bot: str = BOT_USER_ID
) -> Json:
    """``app_mention``; ``<@UBOT>`` is prefixed to ``text`` unless it already mentions the bot."""
    text = text if f"<@{bot}>" in text else f"<@{bot}> {text}"
    return _message("app_mention", user, channel, text, ts, thread_ts)


def message_im(user: str, text: str, ts: str | None = None, channel: str = "D1", thread_ts: str | None = None) -> Json:
    """A user's direct message to the bot (``message.im``)."""
    return {**_message("message", user, channel, text, ts, thread_ts), "channel_type": "im"}


def channel_message(user: str, channel: str, text: str, ts: str | None = None, thread_ts: str | None = None) -> Json:
    """A user's message in a public channel (``message.channels``)."""
    return {**_message("message", user, channel, text, ts, thread_ts), "channel_type": "channel"}


def bot_message(bot_id: str, channel: str, text: str, ts: str | None = None, thread_ts: str | None = None) -> Json:
    """A message with subtype ``bot_message`` from another integration."""
    ts = ts or new_ts()
    event: Json = {"type": "message", "subtype": "bot_message", "bot_id": bot_id, "username": "other-bot"}
    event |= {"text": text, "ts": ts, "channel": channel, "event_ts": ts, "channel_type": "channel"}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def _previous(user: str | None, text: str, ts: str, thread_ts: str | None) -> Json:
    message: Json = {"type": "message", "text": text, "ts": ts, "team": TEAM_ID}
    return message | ({"user": user} if user else {}) | ({"thread_ts": thread_ts} if thread_ts else {})


def message_changed(
    channel: str, ts: str, new_text: str, user: str, thread_ts: str | None = None, old_text: str = ""
) -> Json:
    """Subtype ``message_changed``: ``message`` is the edited message, ``previous_message`` the old one."""
    event_ts, previous = new_ts(), _previous(user, old_text, ts, thread_ts)
    edited = {"text": new_text, "blocks": _rich_text(new_text), "edited": {"user": user, "ts": event_ts}}
    event: Json = {"type": "message", "subtype": "message_changed", "hidden": True, "message": previous | edited}
    event |= {"previous_message": previous | {"blocks": _rich_text(old_text)}, "channel": channel}
    return event | {"ts": event_ts, "event_ts": event_ts, "channel_type": "channel"}


def message_deleted(
    channel: str, ts: str, thread_ts: str | None = None, user: str | None = None, old_text: str = ""
) -> Json:
    """Subtype ``message_deleted`` with ``deleted_ts`` and the ``previous_message``."""
    event_ts = new_ts()
    event: Json = {"type": "message", "subtype": "message_deleted", "hidden": True, "deleted_ts": ts}
    event |= {"channel": channel, "previous_message": _previous(user, old_text, ts, thread_ts)}
    return event | {"ts": event_ts, "event_ts": event_ts, "channel_type": "channel"}


def reaction_added(user: str, reaction: str, channel: str, item_ts: str, item_user: str = BOT_USER_ID) -> Json:
    """``reaction_added`` on a message (``item.type == "message"``)."""
    item = {"type": "message", "channel": channel, "ts": item_ts}
    event: Json = {"type": "reaction_added", "user": user, "reaction": reaction, "item_user": item_user}
    return event | {"item": item, "event_ts": new_ts()}


def reaction_removed(user: str, reaction: str, channel: str, item_ts: str, item_user: str = BOT_USER_ID) -> Json:
    """``reaction_removed``; same shape as ``reaction_added``."""
    return reaction_added(user, reaction, channel, item_ts, item_user) | {"type": "reaction_removed"}


def assistant_thread_started(
    user: str, channel: str = "D1", thread_ts: str | None = None, context_channel_id: str | None = None
) -> Json:
    """``assistant_thread_started``; ``context`` names the channel the user was viewing, if any."""
    context = (
        {"channel_id": context_channel_id, "team_id": TEAM_ID, "enterprise_id": None} if context_channel_id else {}
    )
    thread = {"user_id": user, "context": context, "channel_id": channel, "thread_ts": thread_ts or new_ts()}
    return {"type": "assistant_thread_started", "assistant_thread": thread, "event_ts": new_ts()}


def _interaction(kind: str, user: str, team_id: str) -> Json:
    user_ref = {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id}
    body: Json = {"type": kind, "user": user_ref, "api_app_id": APP_ID, "token": "verification_token"}
    body |= {"trigger_id": f"{new_ts()}.{uuid.uuid4().hex[:12]}", "team": {"id": team_id, "domain": "test"}}
    return body | {"enterprise": None, "is_enterprise_install": False}


def block_actions(
    user: str,
    action_id: str,
    value: str | None = None,
    *,
    channel: str = "C1",
    message: Json | None = None,
    block_id: str = "b1",
    response_url: str = "https://hooks.slack.com/actions/T1/1/x",
    team_id: str = TEAM_ID,
    ephemeral: bool = False,
    **action_fields: Any,
) -> Json:
    """``block_actions`` for a button (other elements via ``action_fields``) on ``message`` (default: a bot message).

    ``ephemeral``: the button is on a message only ``user`` sees; Slack then sends no ``message``, only where it was.
    """
    message = message or {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "", "ts": new_ts()}
    container: Json = {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": ephemeral}
    container |= {"thread_ts": message["thread_ts"]} if "thread_ts" in message else {}
    action: Json = {"type": "button", "action_id": action_id, "block_id": block_id, "action_ts": new_ts()}
    action |= {"text": {"type": "plain_text", "text": "Button", "emoji": True}} | ({"value": value} if value else {})
    action |= action_fields
    body = _interaction("block_actions", user, team_id) | {"container": container}
    body |= {} if ephemeral else {"message": message}
    body |= {"channel": {"id": channel, "name": "general"}, "state": {"values": {}}, "response_url": response_url}
    return body | {"actions": [action]}


def view_submission(
    user: str, callback_id: str, values: Json, private_metadata: str = "", view_id: str | None = None,
    team_id: str = TEAM_ID,
) -> Json:
    """``view_submission``; ``values`` is ``{block_id: {action_id: {"type": ..., "value": ...}}}``. Each modal Slack
    opens has an id of its own (default: a fresh one); the same modal sent twice keeps it."""
    view_id = view_id or f"V{uuid.uuid4().hex[:10].upper()}"
    view: Json = {"id": view_id, "team_id": team_id, "type": "modal", "callback_id": callback_id, "blocks": []}
    view |= {"private_metadata": private_metadata, "state": {"values": values}, "hash": f"{new_ts()}.abc"}
    view |= {"title": {"type": "plain_text", "text": "App"}, "previous_view_id": None, "root_view_id": view_id}
    view |= {"app_id": APP_ID, "external_id": "", "app_installed_team_id": team_id, "bot_id": BOT_ID}
    return _interaction("view_submission", user, team_id) | {"view": view, "response_urls": []}


def form_body(payload: Json) -> str:
    """Interactivity payloads arrive form-encoded as ``payload=<json>``."""
    return urlencode({"payload": json.dumps(payload)})


class SignOptions(TypedDict, total=False):
    timestamp: int | None  # default now; Bolt rejects requests more than 5 minutes old
    retry_num: int | None
    retry_reason: str | None  # e.g. "http_timeout"
    bad_signature: bool  # sign with the wrong secret


def signed_headers(
    body: str | bytes,
    content_type: str,
    signing_secret: str,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    bad_signature: bool = False,
) -> dict[str, str]:
    """Headers Slack sends: content type, timestamp, v0 signature, optional retry headers."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    secret = signing_secret + ("-wrong" if bad_signature else "")
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
    if retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def sign_and_post(
    url: str, body: str | bytes, content_type: str, signing_secret: str, **kw: Unpack[SignOptions]
) -> Response:
    """Sign like Slack and POST with urllib (blocks: don't call it on the loop serving the app)."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, headers=signed_headers(body, content_type, signing_secret, **kw))
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers.items()), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read().decode()


async def async_sign_and_post(
    url: str, body: str | bytes, content_type: str, signing_secret: str, **kw: Unpack[SignOptions]
) -> Response:
    """Like ``sign_and_post`` but with aiohttp (use when the app is served on the running loop)."""
    data = body.encode() if isinstance(body, str) else body
    headers = signed_headers(body, content_type, signing_secret, **kw)
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as resp:
        return resp.status, dict(resp.headers.items()), await resp.text()


def post_event(url: str, payload: Json, secret: str, **kw: Unpack[SignOptions]) -> Response:
    """POST a signed Events API payload (JSON)."""
    return sign_and_post(url, json.dumps(payload), JSON_TYPE, secret, **kw)


def post_action(url: str, payload: Json, secret: str, **kw: Unpack[SignOptions]) -> Response:
    """POST a signed interactivity payload (form-encoded ``payload=``)."""
    return sign_and_post(url, form_body(payload), FORM_TYPE, secret, **kw)


async def async_post_event(url: str, payload: Json, secret: str, **kw: Unpack[SignOptions]) -> Response:
    return await async_sign_and_post(url, json.dumps(payload), JSON_TYPE, secret, **kw)


async def async_post_action(url: str, payload: Json, secret: str, **kw: Unpack[SignOptions]) -> Response:
    return await async_sign_and_post(url, form_body(payload), FORM_TYPE, secret, **kw)

"""Pure helpers over Slack event payloads: what was asked, by whom, where, and whether to answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.render import NO_SOURCE
from core.config import Settings

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
# message subtypes that are still a person writing a message (not an edit, deletion, join, bot post...)
_USER_SUBTYPES = {None, "thread_broadcast", "file_share"}


@dataclass(frozen=True)
class Question:
    text: str
    user: str
    channel: str
    ts: str  # the question message
    thread_ts: str  # the thread the answer goes in
    team: str | None
    is_dm: bool
    event_id: str | None = None

    @property
    def in_thread(self) -> bool:
        return self.thread_ts != self.ts


def strip_mentions(text: str, user_id: str) -> str:
    return " ".join(_MENTION.sub(lambda m: "" if m.group(1) == user_id else m.group(0), text).split())


def mentions(text: str, user_id: str) -> bool:
    return any(m.group(1) == user_id for m in _MENTION.finditer(text or ""))


def is_from_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id") or event.get("bot_profile")) or event.get("subtype") == "bot_message"


def is_user_message(event: dict[str, Any]) -> bool:
    """A message a person wrote now: not an edit, deletion, channel join or bot post."""
    return event.get("subtype") in _USER_SUBTYPES and not is_from_bot(event) and bool(event.get("user"))


def is_dm(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def to_question(event: dict[str, Any], body: dict[str, Any], bot_user_id: str) -> Question:
    ts = event["ts"]
    return Question(
        text=strip_mentions(event.get("text") or "", bot_user_id),
        user=event["user"],
        channel=event["channel"],
        ts=ts,
        thread_ts=event.get("thread_ts") or ts,
        team=event.get("team") or body.get("team_id"),
        is_dm=is_dm(event),
        event_id=body.get("event_id"),
    )


def asks_the_bot(text: str, bot_user_id: str, rule: str) -> bool:
    """Whether a reply in a thread the bot answered is a new question (else it is feedback).

    `mention`: only replies that @mention the bot ask. `question_mark`: replies ending in '?' ask too.
    """
    if mentions(text, bot_user_id):
        return True
    return rule == "question_mark" and strip_mentions(text, bot_user_id).rstrip().endswith("?")


def channel_allowed(channel: str, dm: bool, settings: Settings) -> bool:
    """Whether to answer there: ALLOWED_CHANNELS, or for direct messages ALLOW_DMS (unset: only when no channel
    list limits the bot) and a DM scope that holds a space."""
    if not dm:
        return not settings.allowed_channels or channel in settings.allowed_channels
    allowed = settings.allow_dms if settings.allow_dms is not None else not settings.allowed_channels
    return allowed and spaces_for(channel, dm, settings) != []


def spaces_for(channel: str, dm: bool, settings: Settings) -> list[str] | None:
    """The wiki spaces a conversation sees; None means every space. Direct messages: DM_SPACES, else the "*"
    entry of CHANNEL_SPACES, else every space only when no channel is limited."""
    spaces = settings.channel_spaces
    if not dm:
        return spaces.get(channel, spaces.get("*"))
    if settings.dm_spaces is not None:
        return settings.dm_spaces
    return spaces.get("*", [] if spaces else None)


def message_location(body: dict[str, Any]) -> dict[str, str | None]:
    message = body.get("message") or {}
    return {
        "channel": (body.get("channel") or {}).get("id"),
        "thread_ts": message.get("thread_ts") or message.get("ts"),
    }


@dataclass(frozen=True)
class CorrectionForm:
    """What the correction form sent: the text, the source picked (None: "None of these"), and where the answer is."""

    interaction_id: int
    text: str
    source_n: int | None
    channel: str | None
    thread_ts: str | None


def correction_form(view: dict[str, Any]) -> CorrectionForm:
    values = view["state"]["values"]
    metadata = json.loads(view["private_metadata"])
    chosen = (values["source"]["choice"].get("selected_option") or {}).get("value", NO_SOURCE)
    return CorrectionForm(
        interaction_id=metadata["interaction_id"],
        text=(values["answer"]["text"].get("value") or "").strip(),
        source_n=int(chosen) if chosen != NO_SOURCE else None,
        channel=metadata.get("channel"),
        thread_ts=metadata.get("thread_ts"),
    )

"""Pure Block Kit / mrkdwn building for answers and the correction form, within Slack's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from typing import Any

from bot.links import URL, URL_TRAILER, is_wiki_link, unlink_external, wiki_hosts
from core.prompt import CITATION, Source

SECTION_LIMIT = 3000  # characters in a section block's text
MESSAGE_BLOCK_LIMIT = 50
FALLBACK_TEXT_LIMIT = 3900  # the notification/accessibility `text`
FEEDBACK_ACTION = "answer_feedback"
CORRECTION_ACTION = "suggest_correction"
CONFIRM_CORRECTION_ACTION = "confirm_correction"  # the author's Yes: value is the feedback id
DECLINE_CORRECTION_ACTION = "decline_correction"  # "No, just a comment"
CONFIRM_QUESTION = "Use this as a correction of the answer?"
CORRECTION_VIEW = "correction_modal"  # the correction form's callback_id
NO_SOURCE = "0"  # the form's "None of these"
FEEDBACK_INVITE = (
    "Was this right? React with :+1: or :-1:, or reply in this thread with a correction "
    "— corrections teach the bot in its next training run."
)
UNCITED_HEADING = "Sources the answer did not cite"
UNCITED_REASON = "the best matches for your question"

_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_STRIKE = re.compile(r"~~(.+?)~~")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str, sources: Sequence[Source] = (), link_hosts: Collection[str] = ()) -> str:
    """Markdown as Slack mrkdwn; citations [n] become links to the cited source. Links go only to the wiki
    (`link_hosts` and the sources' hosts); others are shown as text (bot.links), so show the result verbatim."""
    urls = {s.n: s.url for s in sources}
    hosts = wiki_hosts(urls.values()) | set(link_hosts)
    text = unlink_external(escape(markdown), hosts)
    links: list[str] = []

    def stash(link: str) -> str:  # keep finished links out of the later rewrites
        links.append(link)
        return f"\x00{len(links) - 1}\x00"

    def bare(m: re.Match[str]) -> str:  # a verbatim text links nothing by itself
        url = URL_TRAILER.sub("", m.group())
        return stash(f"<{url}>") + m.group()[len(url) :] if is_wiki_link(url, hosts) else m.group()

    text = _LINK.sub(lambda m: stash(f"<{m.group(2)}|{m.group(1)}>"), text)
    text = URL.sub(bare, text)
    text = CITATION.sub(
        lambda m: ", ".join(
            stash(f"<{urls[int(n)]}|[{n}]>") if int(n) in urls else f"[{n}]"
            for n in (number.strip() for number in m.group(1).split(","))
        ),
        text,
    )
    text = _BOLD.sub(lambda m: f"\x01{m.group(1) or m.group(2)}\x01", text)  # out of the italics' way
    text = _ITALIC.sub(r"_\1_", text)
    text = _HEADING.sub(lambda m: f"\x01{m.group(1)}\x01", text).replace("\x01", "*")
    text = _BULLET.sub(r"\1• ", text)
    text = _STRIKE.sub(r"~\1~", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], text)


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at paragraph, then line, then word boundaries."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return pieces + ([text] if text else [])


def sources_block(sources: Sequence[Source], heading: str = "*Sources*") -> dict[str, Any]:
    lines = [f"[{s.n}] <{s.url}|{escape(s.label)}>" for s in sources]
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": heading + "\n" + "\n".join(lines)}]}


def feedback_blocks(interaction_id: int) -> list[dict[str, Any]]:
    value = str(interaction_id)
    return [
        {
            "type": "context_actions",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": FEEDBACK_ACTION,
                    "positive_button": {
                        "text": {"type": "plain_text", "text": "Helpful"},
                        "value": f"good:{value}",
                        "accessibility_label": "Mark this answer as helpful",
                    },
                    "negative_button": {
                        "text": {"type": "plain_text", "text": "Not helpful"},
                        "value": f"bad:{value}",
                        "accessibility_label": "Mark this answer as not helpful",
                    },
                }
            ],
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": CORRECTION_ACTION,
                    "text": {"type": "plain_text", "text": "Suggest a correction"},
                    "value": value,
                }
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": FEEDBACK_INVITE}]},
    ]


def confirm_correction_blocks(feedback_id: int) -> list[dict[str, Any]]:
    """The question put to the author of a reply that reads as a correction, with Yes / No buttons."""
    value = str(feedback_id)
    return [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{CONFIRM_QUESTION}* A correction teaches the bot in its next training run; "
                "a comment stays with the answer for people to read.",
            },
        },
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": CONFIRM_CORRECTION_ACTION, "style": "primary", "value": value,
                 "text": {"type": "plain_text", "text": "Yes"}},
                {"type": "button", "action_id": DECLINE_CORRECTION_ACTION, "value": value,
                 "text": {"type": "plain_text", "text": "No, just a comment"}},
            ],
        },
    ]


def answer_blocks(
    answer: str,
    cited: Sequence[Source],
    interaction_id: int | None,
    note: str | None = None,
    uncited: Sequence[Source] = (),
    link_hosts: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The answer, an optional note, the cited sources (or the best ones it did not cite), the feedback controls.

    The answer links only to the wiki (`link_hosts`, the sources' hosts) and is shown verbatim: Slack turns no
    URL of it into a link by itself."""
    tail: list[dict[str, Any]] = []
    if note:
        tail.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f":warning: {escape(note)}"}]})
    if cited:
        tail.append(sources_block(cited))
    if uncited:
        tail.append(sources_block(uncited, f"*{UNCITED_HEADING}* ({UNCITED_REASON})"))
    if interaction_id is not None:
        tail += feedback_blocks(interaction_id)
    room = MESSAGE_BLOCK_LIMIT - len(tail)
    sections = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece, "verbatim": True}}
        for piece in split_text(to_mrkdwn(answer, cited, link_hosts))
    ]
    if len(sections) > room:
        sections = sections[: room - 1] + [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "_(answer shortened to fit Slack)_"}]}
        ]
    return sections + tail


def plain_answer(
    answer: str, cited: Sequence[Source], note: str | None = None, uncited: Sequence[Source] = ()
) -> str:
    """The answer as plain text for a terminal (`wikibot ask`), with the same parts as the Slack message."""
    parts = [answer]
    if note:
        parts.append(f"Note: {note}")
    for heading, sources in (("Sources:", cited), (f"{UNCITED_HEADING} ({UNCITED_REASON}):", uncited)):
        if sources:
            parts.append("\n".join([heading, *(f"  [{s.n}] {s.label} — {s.url}" for s in sources)]))
    return "\n\n".join(parts)


def fallback_text(answer: str, link_hosts: Collection[str] = ()) -> str:
    """The notification text: the answer, shortened, links outside the wiki as text."""
    text = unlink_external(answer, link_hosts)
    return text if len(text) <= FALLBACK_TEXT_LIMIT else text[: FALLBACK_TEXT_LIMIT - 1] + "…"


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

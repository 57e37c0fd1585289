"""The App Home tab for the people who own the bot: usage, feedback, and how each adapter did; for reviewers,
the corrections that wait for them (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.feedback import describe_reasons
from bot.links import unlink_external
from bot.render import escape
from core.answer_log import UsageStats

BAR_WIDTH = 20
APPROVE_CORRECTION_ACTION = "approve_correction"  # value: the feedback id
REJECT_CORRECTION_ACTION = "reject_correction"
REVIEWS_SHOWN = 10  # corrections listed at once (3 blocks each; a view holds 100 blocks)


@dataclass
class HomeStats(UsageStats):
    """The answer log's figures and each adapter's."""

    adapters: list[dict[str, Any]] = field(default_factory=list)  # version, name, status, accuracy, cites_right, echo


def accuracy_chart(adapters: Sequence[dict[str, Any]]) -> str:
    """Held-out preference accuracy per adapter version as a bar chart in text (renders in any Slack client), with
    the answer gate's figures where it ran."""
    rows = [a for a in adapters if a.get("accuracy") is not None]
    if not rows:
        return "No adapter has been trained yet: the base model answers."
    lines = []
    for a in rows:
        filled = round(a["accuracy"] * BAR_WIDTH)
        marker = " ◀ active" if a["status"] == "active" else f" ({a['status']})"
        answers = (
            f"  answers cite the right source {a['cites_right']:.0%}, copy {a['echo']:.0%}"
            if a.get("cites_right") is not None else ""
        )  # fmt: skip
        lines.append(
            f"v{a['version']:<4} {'█' * filled}{'░' * (BAR_WIDTH - filled)} {a['accuracy']:.0%}{answers}{marker}"
        )
    return "```\n" + "\n".join(lines) + "\n```"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def home_view(stats: HomeStats, is_admin: bool) -> dict[str, Any]:
    intro = (
        "Ask me about the wiki: mention me in a channel or write to me here. I answer in a thread with numbered "
        "sources. React :+1: or :-1: to my answers, or reply with a correction: that is how I learn."
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "wikibot"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": intro}},
    ]
    if not is_admin:
        return {"type": "home", "blocks": blocks}
    s = stats
    blocks += [
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "Last 7 days"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Answers*\n{s.answers_7d} ({s.answers_total} in all)"},
                {"type": "mrkdwn", "text": f"*Feedback rate*\n{_percent(s.answered_with_feedback_7d, s.answers_7d)}"},
                {"type": "mrkdwn", "text": f"*:+1: / :-1:*\n{s.thumbs_up_7d} / {s.thumbs_down_7d}"},
                {"type": "mrkdwn", "text": f"*Corrections*\n{s.corrections_7d}"},
                {"type": "mrkdwn", "text": f"*Nothing in the wiki*\n{s.no_sources_7d}"},
                {"type": "mrkdwn", "text": f"*LLM unavailable*\n{s.llm_errors_7d}"},
            ],
        },
        {"type": "header", "text": {"type": "plain_text", "text": "Held-out preference accuracy per adapter"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": accuracy_chart(s.adapters)}},
    ]
    if s.recent_corrections:
        lines = [
            f"• <@{c['user_id']}> on _{c['question'][:80]}_: {c['text'][:200]}" for c in s.recent_corrections[:5]
        ]
        blocks += [
            {"type": "header", "text": {"type": "plain_text", "text": "Latest corrections"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        ]
    return {"type": "home", "blocks": blocks}


def _shown(text: str | None, limit: int) -> str:
    """People's or the model's text in a reviewer's view: cut, escaped, no link (a reviewer reads, never clicks)."""
    text = text or ""
    return unlink_external(escape(text if len(text) <= limit else text[: limit - 1] + "…"), ())


def review_blocks(pending: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reviewer's section: each correction that waits (what it says, which source its author says is right,
    who confirmed it, why it needs a review) with Approve / Reject buttons."""
    blocks: list[dict[str, Any]] = [
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "Corrections to review"}},
    ]
    if not pending:
        text = "No correction waits for your review."
        return blocks + [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    note = ("Their authors confirmed them; training uses one only once you approve it. Links are shown as text: "
            "check where they go before you approve.")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    for c in pending[:REVIEWS_SHOWN]:
        where = "the correction form" if c["via"] == "modal" else "a thread reply"
        source = next((s for s in c["sources"] if s.get("n") == c["source_n"]), None)
        lines = [
            f"<@{c['user_id']}> on _{_shown(c['question'], 150)}_ ({where}, confirmed by <@{c['confirmed_by']}>)",
            f"*Answer:* {_shown(c['answer'], 300)}",
            f"*Correction:* {_shown(c['text'], 1500)}",
            *([f"*Right source, they say:* [{source['n']}] {_shown(source.get('title'), 150)}"] if source else []),
            f"*Why a review:* {describe_reasons(c['reasons'])}",
        ]
        value = str(c["id"])
        blocks += [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines), "verbatim": True}},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "action_id": APPROVE_CORRECTION_ACTION, "style": "primary", "value": value,
                     "text": {"type": "plain_text", "text": "Approve for training"}},
                    {"type": "button", "action_id": REJECT_CORRECTION_ACTION, "style": "danger", "value": value,
                     "text": {"type": "plain_text", "text": "Reject"}},
                ],
            },
        ]
    if len(pending) > REVIEWS_SHOWN:
        more = f"{len(pending) - REVIEWS_SHOWN} more wait after these."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return blocks

"""The App Home tab for the people who own the bot: usage, feedback, and how each adapter did (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

BAR_WIDTH = 20


@dataclass
class HomeStats:
    answers_7d: int = 0
    answers_total: int = 0
    answered_with_feedback_7d: int = 0
    thumbs_up_7d: int = 0
    thumbs_down_7d: int = 0
    corrections_7d: int = 0
    no_sources_7d: int = 0
    llm_errors_7d: int = 0
    recent_corrections: list[dict[str, Any]] = field(default_factory=list)  # question, text, user
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

"""Synthetic preference data built from the sample wiki: DPO pairs, or the answers and corrections that make them.

Each item answers a labelled question from a prompt built exactly like the bot's (two numbered sources: the
right page and a look-alike page of the same space, in random order). The good answer quotes the right page
and cites its number; the bad one hedges, then quotes the distractor and cites that (a style a tiny model
learns in a few steps, so that held-out prompts show the training too).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
from psycopg.types.json import Jsonb

from core.prompt import Source, build_messages
from core.db import Database
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI, labelled_questions

HEDGE = "I am not sure, but I think that "
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class SyntheticAnswer:
    question: str
    prompt: list[dict[str, str]]
    sources: list[dict[str, Any]]
    good: str
    bad: str
    bad_cites: int

    def pair(self) -> dict[str, Any]:
        """In TRL's conversational preference format, like `training.datasets.load_pairs` gives."""
        return {
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.good}],
            "rejected": [{"role": "assistant", "content": self.bad}],
        }


def _lead(page: Path) -> tuple[str, str]:
    """(title, first sentence of the first paragraph) of a Markdown page."""
    post = frontmatter.loads(page.read_text(encoding="utf-8"))
    paragraphs = [p.strip() for p in post.content.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    text = _LINK.sub(r"\1", paragraphs[0]).replace("**", "")
    return str(post["title"]), _SENTENCE_END.split(text)[0]


def wiki_answers(count: int, seed: int = 0) -> list[SyntheticAnswer]:
    """`count` items (at most one per labelled question), deterministic for a seed."""
    rng = random.Random(seed)
    pages = {f"{p.parent.name}/{p.stem}": p for p in (SAMPLE_WIKI / "pages").rglob("*.md")}
    questions = labelled_questions()
    rng.shuffle(questions)
    items = []
    for question in questions[:count]:
        right = question.pages[0]
        space = right.split("/")[0]
        distractor = rng.choice(sorted(k for k in pages if k.startswith(space + "/") and k not in question.pages))
        order = [right, distractor] if rng.random() < 0.5 else [distractor, right]
        leads = {key: _lead(pages[key]) for key in order}
        sources = [
            Source(n, n, space, leads[key][0], "", f"{SAMPLE_BASE_URL}{key}/", leads[key][1], 1.0, n=n)
            for n, key in enumerate(order, start=1)
        ]
        good_n, bad_n = order.index(right) + 1, order.index(distractor) + 1
        items.append(
            SyntheticAnswer(
                question=question.question,
                prompt=build_messages(question.question, sources, company="Harborline"),
                sources=[s.as_dict() for s in sources],
                good=f"{leads[right][1]} [{good_n}]",
                bad=f"{HEDGE}{leads[distractor][1]} [{bad_n}]",
                bad_cites=bad_n,
            )
        )
    return items


def wiki_preference_pairs(count: int, seed: int = 0) -> list[dict[str, Any]]:
    return [item.pair() for item in wiki_answers(count, seed)]


async def log_corrected_answers(db: Database, items: list[SyntheticAnswer]) -> None:
    """Log each bad answer as the bot's, with a user's correction that is the good one (as Slack would): each by
    another person, so that no one's share of the data is capped (training.datasets.PersonCap)."""
    async with db.connection() as conn, conn.transaction():
        for n, item in enumerate(items):
            cur = await conn.execute(
                "INSERT INTO interactions (source, question, prompt_messages, sources, cited, answer, status)"
                " VALUES ('cli', %s, %s, %s, %s, %s, 'answered') RETURNING id",
                (item.question, Jsonb(item.prompt), Jsonb(item.sources), [item.bad_cites], item.bad),
            )
            (interaction_id,) = await cur.fetchone()  # type: ignore[misc]
            await conn.execute(
                "INSERT INTO feedback (interaction_id, user_id, kind, via, text, confirmed_by, confirmed_at)"
                " VALUES (%s, %s, 'correction', 'modal', %s, %s, now())",
                (interaction_id, f"U{n}", item.good, f"U{n}"),
            )

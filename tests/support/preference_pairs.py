"""Synthetic DPO preference pairs built from the sample wiki, in TRL's conversational format.

Each pair answers a labelled question from a prompt built exactly like the bot's (two numbered sources:
the right page and a look-alike page of the same space, in random order). The chosen answer quotes the
right page and cites its number; the rejected one hedges, then quotes the distractor and cites that (a
style that a tiny model learns in a few steps, so held-out prompts show the training too).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import frontmatter

from bot.prompt import Source, build_messages
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI, labelled_questions

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
HEDGE = "I am not sure, but I think that "


def _lead(page: Path) -> tuple[str, str]:
    """(title, first sentence of the first paragraph) of a Markdown page."""
    post = frontmatter.loads(page.read_text(encoding="utf-8"))
    paragraphs = [p.strip() for p in post.content.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    text = _LINK.sub(r"\1", paragraphs[0]).replace("**", "")
    return str(post["title"]), _SENTENCE_END.split(text)[0]


def wiki_preference_pairs(count: int, seed: int = 0) -> list[dict]:
    """`count` pairs (at most one per labelled question), deterministic for a seed."""
    rng = random.Random(seed)
    pages = {f"{p.parent.name}/{p.stem}": p for p in (SAMPLE_WIKI / "pages").rglob("*.md")}
    questions = labelled_questions()
    rng.shuffle(questions)
    pairs = []
    for question in questions[:count]:
        right = question.pages[0]
        space = right.split("/")[0]
        distractor = rng.choice(sorted(k for k in pages if k.startswith(space + "/") and k not in question.pages))
        order = [right, distractor] if rng.random() < 0.5 else [distractor, right]
        leads = {key: _lead(pages[key]) for key in order}
        sources = [
            Source(n, 0, 0, space, leads[key][0], "", f"{SAMPLE_BASE_URL}{key}/", leads[key][1], 1.0)
            for n, key in enumerate(order, start=1)
        ]
        prompt = build_messages(question.question, sources, company="Harborline")

        def answer(key: str, lead_in: str = "") -> list[dict[str, str]]:
            return [{"role": "assistant", "content": f"{lead_in}{leads[key][1]} [{order.index(key) + 1}]"}]

        pairs.append({"prompt": prompt, "chosen": answer(right), "rejected": answer(distractor, HEDGE)})
    return pairs

"""From logged answers and their feedback to DPO preference pairs. Pure: no I/O.

Rules (the README's "How feedback becomes training data" says the same for people):
- Only answers with status 'answered' and at least one source are used. Answers with identical logged
  prompts (a question asked again, same history and sources) are one prompt: its pairs use that
  `prompt_messages` exactly, and its id (`interaction_id`) is the first such answer's.
- Identical answer texts of a prompt are one answer. Its net rating, the sum of its users' votes, makes it
  preferred (> 0), rejected (< 0) or neither (0: a tie or conflict gives no signal).
- A correction is a preferred answer "as written": the user's text with the valid [n] it has; with none,
  it cites the correction's `source_n`, else what the corrected answer cited. It is not rewritten by an
  LLM: that keeps it deterministic, needs no LLM at training time, and 👍 answers teach the style.
  A correction outranks ratings: the corrected answer is rejected even if others gave it 👍. Of several
  corrections of a prompt the latest (highest id) is chosen; the others are not used, save that each still
  rejects the answer it corrected.
- Each preferred answer gets up to `max_distractors` rejected copies whose citations all point at one
  retrieved source it does not cite (best ranked first): they teach which document to cite.
- Pairs: every preferred answer with every rejected one (kind 'correction' or 'rating', after where the
  chosen answer came from) and with its distractors ('distractor'); identical pairs are merged. A
  rejected answer with nothing preferred beside it makes no pair (counted in the stats); comments make none.
- Held-out split by prompt: `split_of(interaction_id)` hashes the prompt's id, so no prompt is in both
  splits, and a prompt stays in its split from one snapshot to the next.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bot.prompt import cited_numbers, clean_citations

PairKind = Literal["correction", "rating", "distractor"]
Split = Literal["train", "heldout"]
PAIR_KINDS: tuple[PairKind, ...] = ("correction", "rating", "distractor")
SPLITS: tuple[Split, ...] = ("train", "heldout")
DEFAULT_MAX_DISTRACTORS = 2
STATS = (  # what `build_pairs` counts, pairs or not
    "answers", "answers_skipped", "prompts", "rated_up", "rated_down", "tied",
    "corrections", "corrections_superseded", "rejected_unpaired", "comments", "pairs_merged",
)

# a run of adjacent citations, as bot.prompt writes and reads them: "[2]", "[1, 3]", "[1][3]"
_CITATION_RUN = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\](?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])*")
_END_PUNCTUATION = re.compile(r"[.!?]+$")


@dataclass(frozen=True)
class LoggedAnswer:
    """One row of the answer log (`interactions`)."""

    interaction_id: int
    prompt_messages: list[dict[str, str]]
    sources: list[dict[str, Any]]
    answer: str
    cited: list[int]
    status: str


@dataclass(frozen=True)
class FeedbackItem:
    """A standing vote (one per user and answer), or a correction or comment that was not retracted."""

    feedback_id: int
    interaction_id: int
    user_id: str
    kind: str  # 'rating' | 'correction' | 'comment'
    value: int | None = None  # ratings: +1 or -1
    text: str | None = None
    source_n: int | None = None  # corrections from the modal: the source the user says is right


@dataclass(frozen=True)
class PreferencePair:
    interaction_id: int  # the prompt's id: its first logged answer
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    kind: PairKind
    feedback_ids: tuple[int, ...]

    def to_trl(self) -> dict[str, list[dict[str, str]]]:
        return trl_record(self.prompt, self.chosen, self.rejected)


@dataclass(frozen=True)
class PairSet:
    pairs: list[PreferencePair]
    stats: dict[str, int]  # every key of STATS
    interaction_ids: tuple[int, ...]  # answers whose prompt, text or feedback went into a pair
    feedback_ids: tuple[int, ...]  # feedback that went into a pair


@dataclass
class _Answer:
    """A distinct answer text of a prompt with the feedback on every logged copy of it."""

    text: str
    votes: list[FeedbackItem] = field(default_factory=list)
    corrections: list[FeedbackItem] = field(default_factory=list)

    @property
    def evidence(self) -> tuple[int, ...]:
        return tuple(sorted(f.feedback_id for f in self.votes + self.corrections))


@dataclass(frozen=True)
class _Candidate:
    text: str
    origin: PairKind
    evidence: tuple[int, ...]


def trl_record(prompt: list[dict[str, str]], chosen: str, rejected: str) -> dict[str, list[dict[str, str]]]:
    """A pair in TRL's conversational preference format (explicit prompt)."""
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def split_of(interaction_id: int, fraction: float) -> Split:
    """'heldout' for about `fraction` of prompt ids, always the same ones (a hash, not Python's `hash`)."""
    digest = hashlib.sha256(f"wikibot-split:{interaction_id}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") < fraction * 2**64 else "train"


def build_pairs(
    answers: Iterable[LoggedAnswer], feedback: Iterable[FeedbackItem], max_distractors: int = DEFAULT_MAX_DISTRACTORS
) -> PairSet:
    """The preference pairs the feedback gives, deduplicated, in prompt order (see the module's rules)."""
    stats: Counter[str] = Counter()
    by_answer: dict[int, list[FeedbackItem]] = defaultdict(list)
    for item in feedback:
        by_answer[item.interaction_id].append(item)
    prompts: dict[tuple[tuple[tuple[str, str], ...], ...], list[LoggedAnswer]] = {}
    for answer in sorted(answers, key=lambda a: a.interaction_id):
        if answer.status != "answered" or not answer.sources:
            stats["answers_skipped"] += 1
            continue
        key = tuple(tuple(sorted(m.items())) for m in answer.prompt_messages)  # identical prompts, one key
        prompts.setdefault(key, []).append(answer)
    stats["answers"] = sum(len(group) for group in prompts.values())
    stats["prompts"] = len(prompts)

    merged: dict[tuple[int, str, str], PreferencePair] = {}
    for group in prompts.values():
        for pair in _prompt_pairs(group, by_answer, max_distractors, stats):
            key = (pair.interaction_id, pair.chosen, pair.rejected)
            if key in merged:
                ids = tuple(sorted(set(merged[key].feedback_ids) | set(pair.feedback_ids)))
                merged[key] = replace(merged[key], feedback_ids=ids)
                stats["pairs_merged"] += 1
            else:
                merged[key] = pair
    pairs = list(merged.values())

    answer_of = {f.feedback_id: f.interaction_id for items in by_answer.values() for f in items}
    feedback_ids = sorted({i for pair in pairs for i in pair.feedback_ids})
    interaction_ids = {pair.interaction_id for pair in pairs} | {answer_of[i] for i in feedback_ids}
    return PairSet(pairs, {k: stats[k] for k in STATS}, tuple(sorted(interaction_ids)), tuple(feedback_ids))


def _prompt_pairs(
    group: list[LoggedAnswer],
    by_answer: dict[int, list[FeedbackItem]],
    max_distractors: int,
    stats: Counter[str],
) -> Iterator[PreferencePair]:
    first = group[0]
    numbers = [int(s["n"]) for s in first.sources]
    texts: dict[str, _Answer] = {}
    corrections: list[tuple[FeedbackItem, LoggedAnswer]] = []
    for answer in group:
        entry = texts.setdefault(answer.answer, _Answer(answer.answer))
        for item in by_answer.get(answer.interaction_id, ()):
            if item.kind == "rating" and item.value:
                entry.votes.append(item)
            elif item.kind == "correction" and item.text and item.text.strip():
                entry.corrections.append(item)
                corrections.append((item, answer))
            elif item.kind == "comment":
                stats["comments"] += 1

    preferred: list[_Candidate] = []
    rejected: list[_Candidate] = []
    if corrections:
        item, answer = max(corrections, key=lambda c: c[0].feedback_id)
        preferred.append(_Candidate(as_written(item, answer.cited, len(numbers)), "correction", (item.feedback_id,)))
        stats["corrections"] += 1
        stats["corrections_superseded"] += len(corrections) - 1
    for entry in texts.values():
        net = sum(v.value or 0 for v in entry.votes)
        if entry.votes:
            stats["rated_up" if net > 0 else "rated_down" if net < 0 else "tied"] += 1
        if entry.corrections or net < 0:
            rejected.append(_Candidate(entry.text, "rating", entry.evidence))
        elif net > 0:
            preferred.append(_Candidate(entry.text, "rating", entry.evidence))
    if not preferred:
        stats["rejected_unpaired"] += len(rejected)
        return

    prompt_id, prompt = first.interaction_id, first.prompt_messages
    preferred_texts = {p.text for p in preferred}
    for chosen in preferred:
        for worse in rejected:
            if worse.text != chosen.text:
                ids = tuple(sorted(set(chosen.evidence) | set(worse.evidence)))
                yield PreferencePair(prompt_id, prompt, chosen.text, worse.text, chosen.origin, ids)
        for wrong in distractors(chosen.text, numbers, max_distractors):
            if wrong not in preferred_texts:
                yield PreferencePair(prompt_id, prompt, chosen.text, wrong, "distractor", chosen.evidence)


def as_written(correction: FeedbackItem, answer_cited: list[int], n_sources: int) -> str:
    """A correction in the bot's format: its own valid [n], else [source_n], else the corrected answer's."""
    text, cited = clean_citations(correction.text or "", n_sources)
    if cited:
        return text
    if correction.source_n is not None and 1 <= correction.source_n <= n_sources:
        numbers = [correction.source_n]
    else:
        numbers = [n for n in answer_cited if 1 <= n <= n_sources]
    return cite(text, numbers) if numbers else text


def cite(text: str, numbers: list[int]) -> str:
    """`text` with `[n, m]` added at its end, before the closing punctuation: "Five days [2]."."""
    marker = f" [{', '.join(map(str, numbers))}]"
    end = _END_PUNCTUATION.search(text)
    if end is None:
        return text + marker
    return text[: end.start()].rstrip() + marker + end.group()


def distractors(text: str, source_numbers: list[int], limit: int) -> list[str]:
    """`text` citing, instead of its sources, one source it does not cite; for the first `limit` such."""
    cited = set(cited_numbers(text))
    if not cited & set(source_numbers):
        return []
    others = [n for n in source_numbers if n not in cited][:limit]
    return [_CITATION_RUN.sub(f"[{n}]", text) for n in others]

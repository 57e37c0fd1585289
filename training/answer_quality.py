"""What a reader would notice about an answer, judged against the sources it was given (pure).

Citation rates alone reward the wrong things: a model that copies the prompt's source block into its answer
cites [1], and [1] is usually right. So besides which sources an answer cites, it is checked for copying (a
source's header or URL line, or a long run of one source's words) and, where the question's facts are known,
for the facts themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bot.prompt import cited_numbers

ECHO_WORDS = 30  # this many words in a row, copied from one source, is copying rather than answering
NOT_COVERED = re.compile(r"\b(does not|doesn't|do not|don't|not) (cover|mention|say|contain|answer)|no information",
                         re.IGNORECASE)  # fmt: skip
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class AnswerCheck:
    cites_any: bool  # cites at least one source that exists
    invalid: bool  # cites a number no source has
    echo: bool  # reproduces the prompt's source block
    not_covered: bool  # says the wiki does not cover the question
    gold_retrieved: bool | None  # a gold page is among the sources (None: no gold pages known)
    cites_gold: bool | None  # cites a source from a gold page
    first_gold: bool | None  # the first source it cites is from a gold page
    gold_not_first: bool | None  # source [1] is not gold but another is, and it cites a gold one (None: not so)
    has_fact: bool | None  # holds every fact of the question (None: no facts known)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def copies(answer: str, source_text: str, run: int = ECHO_WORDS) -> bool:
    """The answer holds `run` consecutive words of the source, verbatim (case and punctuation aside)."""
    words = _words(source_text)
    if len(words) < run:
        return False
    spans = {tuple(words[i : i + run]) for i in range(len(words) - run + 1)}
    said = _words(answer)
    return any(tuple(said[i : i + run]) in spans for i in range(len(said) - run + 1))


def echoes(answer: str, sources: Sequence[dict[str, Any]]) -> bool:
    """The answer reproduces the prompt's source block: a header line, a URL line, or a long copied run."""
    lowered = answer.lower()
    for source in sources:
        label = f"{source['title']} › {source['section']}" if source.get("section") else source["title"]
        if f"[{source['n']}] {label}".lower() in lowered or f"url: {source['url']}".lower() in lowered:
            return True
        if copies(answer, source["text"]):
            return True
    return False


def has_facts(answer: str, facts: Iterable[Iterable[str]]) -> bool:
    lowered = answer.lower()
    return all(any(alt.lower() in lowered for alt in alternatives) for alternatives in facts)


def check_answer(
    answer: str,
    sources: Sequence[dict[str, Any]],
    pages: Sequence[str],
    gold: Sequence[str] = (),
    facts: Sequence[Sequence[str]] = (),
) -> AnswerCheck:
    """Judge `answer` (the model's raw text) given the prompt's numbered `sources` (as logged) and their `pages`
    (one page key per source, in order), the question's `gold` pages and `facts` when known."""
    numbers = cited_numbers(answer)
    valid = [n for n in numbers if 1 <= n <= len(sources)]
    gold_at = {i + 1 for i, page in enumerate(pages) if page in gold}
    known = bool(gold)
    retrieved = bool(gold_at)
    return AnswerCheck(
        cites_any=bool(valid),
        invalid=len(valid) < len(numbers),
        echo=echoes(answer, sources),
        not_covered=bool(NOT_COVERED.search(answer)),
        gold_retrieved=retrieved if known else None,
        cites_gold=bool(gold_at & set(valid)) if retrieved else None,
        first_gold=bool(valid) and valid[0] in gold_at if retrieved else None,
        gold_not_first=bool(gold_at & set(valid)) if retrieved and 1 not in gold_at else None,
        has_fact=has_facts(answer, facts) if facts else None,
    )


def summarize(checks: Sequence[AnswerCheck]) -> dict[str, float | int]:
    """Each measure as the share of answers it applies to (those where it is not None), and the answer count."""
    summary: dict[str, float | int] = {"answers": len(checks)}
    for name in AnswerCheck.__dataclass_fields__:
        values = [v for v in (getattr(c, name) for c in checks) if v is not None]
        summary[name] = sum(values) / len(values) if values else float("nan")
    return summary

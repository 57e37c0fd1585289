"""What a reader would notice about an answer, judged against the sources it was given (pure).

Citation rates alone reward the wrong things: a model that copies the prompt's source block into its answer
cites [1], and [1] is usually right. So besides which sources an answer cites, it is checked for copying (a
source's header or URL line, or a long run of one source's words) and, where the question's facts are known,
for the facts themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.prompt import cited_numbers

ECHO_WORDS = 30  # this many words in a row, copied from one source, is copying rather than answering
NOT_COVERED = re.compile(r"\b(does not|doesn't|do not|don't|not) (cover|mention|say|contain|answer)|no information",
                         re.IGNORECASE)  # fmt: skip
_WORD = re.compile(r"\w+")
_HEADER = re.compile(r"^\[\d{1,3}\] \S")


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
    headers = []
    for source in sources:
        label = f"{source['title']} › {source['section']}" if source.get("section") else source["title"]
        headers += [f"[{source['n']}] {label}", f"URL: {source['url']}"]
    return echoes_block(answer, headers, [source["text"] for source in sources])


def echoes_block(answer: str, headers: Sequence[str], texts: Sequence[str]) -> bool:
    lowered = answer.lower()
    return any(h.lower() in lowered for h in headers) or any(copies(answer, text) for text in texts)


def prompt_sources(user_message: str) -> tuple[list[str], list[str]]:
    """(header and URL lines, source texts) of a prompt's user message, as `core.prompt.format_sources` wrote it."""
    block = user_message.split("Sources:\n\n", 1)[-1].rsplit("\n\nQuestion: ", 1)[0]
    lines = block.split("\n")
    starts = [i for i in range(len(lines) - 1) if _HEADER.match(lines[i]) and lines[i + 1].startswith("URL: ")]
    headers = [line for i in starts for line in lines[i : i + 2]]
    texts = ["\n".join(lines[i + 2 : end]).strip() for i, end in zip(starts, [*starts[1:], len(lines)])]
    return headers, texts


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


EXAMPLE_ANSWERS = 5  # of the answer gate's answers, kept with an adapter's figures
EXAMPLE_CHARS = 300


@dataclass(frozen=True)
class AnswerCase:
    """A held-out prompt and the sources its preferred answers cite (what people said is right)."""

    prompt: list[dict[str, str]]
    right: frozenset[int]


@dataclass(frozen=True)
class AnswerMetrics:
    """Shares of a model's greedy answers to held-out prompts (see `answer_metrics`)."""

    n: int
    cites_any: float
    cites_right: float  # of answers to prompts whose preferred answer cites a source: cites one of those
    invalid: float
    echo: float
    # the first EXAMPLE_ANSWERS answers as written (cut to EXAMPLE_CHARS): figures a model can game need reading
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The answer gate's margins: citations must improve (or already be this good); echo may not rise at all;
# invented source numbers may rise to this share, no further (a stray "[6]" in one answer of fifty).
GOOD_CITATION_RATE = 0.9
INVALID_ALLOWANCE = 0.02


def answer_cases(pairs: Iterable[dict[str, Any]]) -> list[AnswerCase]:
    """One case per distinct prompt of TRL-format preference pairs, with the sources its chosen answers cite."""
    cases: dict[str, tuple[list[dict[str, str]], set[int]]] = {}
    for pair in pairs:
        key = repr(pair["prompt"])
        prompt, right = cases.setdefault(key, (pair["prompt"], set()))
        right.update(cited_numbers(pair["chosen"][-1]["content"]))
    return [AnswerCase(prompt, frozenset(right)) for prompt, right in cases.values()]


def answer_metrics(answers: Sequence[str], cases: Sequence[AnswerCase]) -> AnswerMetrics:
    cites_any, cites_right, labelled, invalid, echo = 0, 0, 0, 0, 0
    for answer, case in zip(answers, cases, strict=True):
        headers, texts = prompt_sources(case.prompt[-1]["content"])
        numbers = cited_numbers(answer)
        valid = {n for n in numbers if 1 <= n <= len(texts)}
        cites_any += bool(valid)
        invalid += len(valid) < len(set(numbers))
        echo += echoes_block(answer, headers, texts)
        if case.right:
            labelled += 1
            cites_right += bool(valid & case.right)
    n = len(cases)
    return AnswerMetrics(n, cites_any / n if n else 0.0, cites_right / labelled if labelled else 0.0,
                         invalid / n if n else 0.0, echo / n if n else 0.0,
                         [a[:EXAMPLE_CHARS] for a in answers[:EXAMPLE_ANSWERS]])  # fmt: skip


def decide_answers(candidate: AnswerMetrics, active: AnswerMetrics) -> tuple[bool, str]:
    """Promote only when the candidate's answers cite better and copy, invent and err no more than the active's."""
    figures = (
        f"answers: cites the right source {candidate.cites_right:.2f} (active {active.cites_right:.2f}), any source "
        f"{candidate.cites_any:.2f} ({active.cites_any:.2f}), echo {candidate.echo:.2f} ({active.echo:.2f}), "
        f"invalid {candidate.invalid:.2f} ({active.invalid:.2f}) on {candidate.n} held-out prompts"
    )
    better = candidate.cites_right > active.cites_right or (
        candidate.cites_right == active.cites_right
        and (candidate.cites_any > active.cites_any or candidate.cites_right >= GOOD_CITATION_RATE)
    )
    if not better:
        return False, f"citations did not improve: {figures}"
    if candidate.echo > active.echo:
        return False, f"copies the sources more often: {figures}"
    if candidate.invalid > max(active.invalid, INVALID_ALLOWANCE):
        return False, f"invents source numbers: {figures}"
    return True, figures

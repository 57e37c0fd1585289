"""Does a base model cite the right source on its own? Greedy answers to sample-wiki questions under prompt variants.

    python bench/citing.py [--base-model DIR] [--questions 30] [--tokens 120]

The learning loop teaches a choice among sources to a model that already cites some of the time; this measures
whether a model does, before any training: wikibot's prompt, and variants of it that could make citing easier
for a small model (no URL lines to copy, one worked example turn, the instruction repeated after the question).
Runs on demand, never in the tests. Answers are judged by `training/answer_quality.py`, as the learning-loop
benchmark judges them; the first few are printed so that a reader can see what the figures count. A second table
asks whether the model can choose even where it does not cite: after its own answer, which " [n]." it finds
likeliest, against always [1] and against chance.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first

from bench.report import table  # noqa: E402
from bot.sources import number_sources  # noqa: E402
from core.config import Settings  # noqa: E402
from core.prompt import Source, build_messages  # noqa: E402
from retrieval.index import WikiIndex  # noqa: E402
from retrieval.sample import SAMPLE_BASE_URL, LabelledQuestion, ingest_sample_wiki, labelled_questions  # noqa: E402
from training.answer_quality import check_answer  # noqa: E402
from training.default_model import prepare_default_model  # noqa: E402
from training.gate import generate_answers, load_model, padding_id, prompt_ids, sequence_logps  # noqa: E402

Messages = list[dict[str, str]]
EXAMPLE = [  # a made-up exchange, about no page of any wiki, in the format asked for
    {"role": "user", "content": "Sources:\n\n[1] Office › Parking\nVisitors park in lot B, next to the main entrance."
                                "\n\n[2] Office › Opening hours\nThe office opens at 8:00 and closes at 18:00 on "
                                "weekdays.\n\nQuestion: When does the office open?"},
    {"role": "assistant", "content": "The office opens at 8:00 on weekdays [2]."},
]  # fmt: skip
HINT = "\n\nAnswer in one or two sentences of your own, ending with the number of the source, like [2]."


def no_urls(messages: Messages) -> Messages:
    *head, last = messages
    kept = "\n".join(line for line in last["content"].split("\n") if not line.startswith("URL: "))
    return [*head, {**last, "content": kept}]


def with_example(messages: Messages) -> Messages:
    return [messages[0], *EXAMPLE, *messages[1:]]


def with_hint(messages: Messages) -> Messages:
    *head, last = messages
    return [*head, {**last, "content": last["content"] + HINT}]


VARIANTS: dict[str, Callable[[Messages], Messages]] = {
    "wikibot's prompt": lambda m: m,
    "no URL lines": no_urls,
    "no URL lines + an example turn": lambda m: with_example(no_urls(m)),
    "no URL lines + an example turn + the instruction after the question":
        lambda m: with_hint(with_example(no_urls(m))),
}  # fmt: skip
MEASURES = ("cites_any", "cites_gold", "gold_not_first", "invalid", "echo", "has_fact")
# made to cite: of the sources, the one the model finds likeliest to cite after its answer (a gold page retrieved)
FORCED = ("made to cite: a gold source", "made to cite: [1]", "chance of a gold source",
          "made to cite, [1] not gold: a gold source")  # fmt: skip


async def retrieved(questions: list[LabelledQuestion]) -> list[tuple[LabelledQuestion, list[Source]]]:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="wikibot-citing-")))
    async with WikiIndex.open(settings) as index:
        await ingest_sample_wiki(index)
        return [(q, number_sources(await index.search.search(q.question), settings.prompt_max_chars))
                for q in questions]  # fmt: skip


def page(source: Source) -> str:
    return source.url.removeprefix(SAMPLE_BASE_URL).split("#")[0]


def likeliest_citation(model: Any, tokenizer: Any, prompt: list[int], answer: str, sources: int) -> int:
    """The source number the model finds likeliest to cite at the end of its own answer: " [n]." scored for
    each n after the answer (its final full stop taken off)."""
    prefix = prompt + tokenizer(answer.rstrip().removesuffix("."), add_special_tokens=False)["input_ids"]
    cited = [tokenizer(f" [{n}].", add_special_tokens=False)["input_ids"] for n in range(1, sources + 1)]
    scores = sequence_logps(model, [(prefix, c) for c in cited], padding_id(tokenizer))
    return 1 + max(range(sources), key=scores.__getitem__)


def run(model: Any, tokenizer: Any, cases: list[tuple[LabelledQuestion, list[Source]]], variant: str,
        tokens: int, show: int) -> dict[str, float]:  # fmt: skip
    counts: dict[str, list[bool]] = {m: [] for m in (*MEASURES, *FORCED)}
    prompts = [VARIANTS[variant](build_messages(question.question, sources)) for question, sources in cases]
    answers = generate_answers(model, tokenizer, prompts, tokens)
    for i, ((question, sources), messages, answer) in enumerate(zip(cases, prompts, answers, strict=True)):
        check = check_answer(answer, [s.as_dict() for s in sources], [page(s) for s in sources], question.pages,
                             [list(f) for f in question.facts])  # fmt: skip
        for measure in MEASURES:
            if (value := getattr(check, measure)) is not None:
                counts[measure].append(bool(value))
        gold = [page(s) in question.pages for s in sources]
        if any(gold):
            chosen = likeliest_citation(model, tokenizer, prompt_ids(tokenizer, messages), answer, len(sources))
            counts["made to cite: a gold source"].append(gold[chosen - 1])
            counts["made to cite: [1]"].append(chosen == 1)
            counts["chance of a gold source"].append(sum(gold) / len(gold))  # a share, averaged below
            if not gold[0]:
                counts["made to cite, [1] not gold: a gold source"].append(gold[chosen - 1])
        if i < show:
            print(f"  [{variant}] {question.question[:70]}\n    -> {answer[:200]!r}", flush=True)
    return {m: sum(v) / len(v) if v else float("nan") for m, v in counts.items()} | {
        "n": len(cases), "gold_not_first_n": len(counts["gold_not_first"]),
        "gold_n": len(counts["made to cite: [1]"]),
        "not_first_n": len(counts["made to cite, [1] not gold: a gold source"])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", help="HF model directory (default: the default model, prepared if needed)")
    parser.add_argument("--questions", type=int, default=30, help="the first N labelled sample-wiki questions")
    parser.add_argument("--tokens", type=int, default=120, help="greedy answer tokens at most")
    parser.add_argument("--show", type=int, default=3, help="answers printed per variant")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="prompts to try (default: all)")
    args = parser.parse_args()
    base = args.base_model or str(prepare_default_model(Settings().data_dir))
    cases = asyncio.run(retrieved(labelled_questions()[: args.questions]))
    model, tokenizer = load_model(base, None)
    rows, forced = [], []
    for variant in args.variants or list(VARIANTS):
        started = time.perf_counter()
        result = run(model, tokenizer, cases, variant, args.tokens, args.show)
        rows.append([variant, result["n"], *(result[m] for m in MEASURES), result["gold_not_first_n"],
                     round(time.perf_counter() - started)])  # fmt: skip
        forced.append([variant, result["gold_n"], *(result[m] for m in FORCED), result["not_first_n"]])
    table(f"Greedy answers of {Path(base).name}, no adapter ({len(cases)} sample-wiki questions)",
          ["prompt", "questions", *MEASURES, "questions where [1] is not gold but another is", "s"], rows)  # fmt: skip
    table("Made to cite: the source the model finds likeliest to cite after its own answer",
          ["prompt", "questions with a gold source", *FORCED, "questions where [1] is not gold"], forced)  # fmt: skip


if __name__ == "__main__":
    main()

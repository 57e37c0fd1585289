"""Bot benchmark (on demand): ack latency under 50 concurrent mentions, and the pipeline's own overhead.

    .venv/bin/python bench/bot.py [--questions 50]

The real Bolt app over HTTP, the sample wiki in a throwaway embedded PostgreSQL, the Slack API double on
loopback. Generation is excluded: the LLM here is a loopback OpenAI-compatible endpoint that streams a fixed
cited answer at once, so what is measured is retrieval, prompt, logging and posting.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retrieval.config import Settings  # noqa: E402
from retrieval.db import start_embedded_server  # noqa: E402
from retrieval.embed import Embedder  # noqa: E402
from retrieval.index import WikiIndex  # noqa: E402
from retrieval.sample import ingest_sample_wiki, labelled_questions  # noqa: E402
from tests.support import slack_events as ev  # noqa: E402
from tests.support.bot_harness import SIGNING_SECRET, running_bot, slack_settings  # noqa: E402
from tests.support.llm_double import scripted_llm  # noqa: E402
from tests.support.slack_api import FakeSlackAPI  # noqa: E402

ANSWER = "Five paid days for a close relative [1]; three for a grandparent [2]."


def post_concurrently(url: str, events: list[dict]) -> list[float]:
    """In another process (so the client does not share the bot's event loop): post all events at once."""

    def timed(event: dict) -> float:
        start = time.perf_counter()
        status, _, _ = ev.post_event(url, ev.event_callback(event), SIGNING_SECRET)
        assert status == 200, status
        return (time.perf_counter() - start) * 1000

    with ThreadPoolExecutor(len(events)) as threads:
        return list(threads.map(timed, events))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeSlackAPI() as slack:
        url = start_embedded_server(Path(tmp) / "pg")
        settings = Settings(data_dir=Path(tmp), database_url=url, db_pool_size=20)
        embedder = Embedder.from_settings(settings)
        async with WikiIndex.open(settings, embedder=embedder) as index:
            await ingest_sample_wiki(index)
        async with scripted_llm([ANSWER[:30], ANSWER[30:]]) as llm_url:  # streams at once: generation ~0
            configured = slack_settings(settings, slack, llm_base_url=llm_url)
            questions = [q.question for q in labelled_questions()]
            async with running_bot(configured, slack, embedder) as bot:
                await bot.post(ev.app_mention("U1", "C1", "<@UBOT> warm up?"))
                await bot.wait_answered(1)
                await bot.clear_log()
                mentions = [ev.app_mention("U1", "C1", f"<@UBOT> {questions[i % len(questions)]}") for i in range(n)]

                started = time.perf_counter()
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    acks = await asyncio.get_running_loop().run_in_executor(pool, post_concurrently, bot.url, mentions)
                await bot.wait_answered(n, timeout=600)
                wall = time.perf_counter() - started

                # one question at a time: event in -> final answer posted, with generation ~0
                await bot.clear_log()
                pipeline = []
                for i in range(n):
                    done = len(slack.calls_to("chat.update"))
                    start = time.perf_counter()
                    await bot.post(ev.app_mention("U1", "C1", f"<@UBOT> {questions[i % len(questions)]}"))
                    while len(slack.calls_to("chat.update")) == done:
                        await asyncio.sleep(0.001)
                    pipeline.append((time.perf_counter() - start) * 1000)
                rows = await bot.wait_answered(n)

    retrieval = [r["retrieval_ms"] for r in rows]
    print(f"{n} concurrent mentions: all answered in {wall:.1f}s ({n / wall:.1f} answers/s)")
    print(f"{'metric':<48}{'p50':>9}{'p99':>9}  target")
    print(f"{'ack latency, 50 concurrent (ms)':<48}{percentile(acks, 50):>9.1f}{percentile(acks, 99):>9.1f}  p99 < 100")
    print(f"{'pipeline excl. generation, event->posted (ms)':<48}{percentile(pipeline, 50):>9.1f}"
          f"{percentile(pipeline, 99):>9.1f}  p50 < 50")
    print(f"{'  of which retrieval incl. query embedding (ms)':<48}{percentile(retrieval, 50):>9.1f}"
          f"{percentile(retrieval, 99):>9.1f}")
    print(f"mean ack {statistics.mean(acks):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=50)
    asyncio.run(main(parser.parse_args().questions))

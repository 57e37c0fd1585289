"""`wikibot pairs build|export`, `wikibot train`, `wikibot labels`, `wikibot adapters list|promote|rollback`,
`wikibot scheduler`:
the training part of the command line.

Handlers import what they use when they run: `wikibot --help` and each command pay only for their own imports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from training.pairs import CITATION_RULES, SPLITS

if TYPE_CHECKING:
    from core.config import Settings
    from core.db import Database
    from training.datasets import DatasetSnapshot
    from training.swap import SwapReport


def register(sub: argparse._SubParsersAction) -> None:
    pairs = sub.add_parser("pairs", help="preference pairs built from feedback (the training data)")
    pairs_sub = pairs.add_subparsers(dest="pairs_command", required=True)

    build = pairs_sub.add_parser("build", help="snapshot the pairs that the feedback so far gives; print the counts")
    build.add_argument("--json", action="store_true", help="print the counts as JSON")
    build.set_defaults(handler=pairs_build)

    export = pairs_sub.add_parser("export", help="write a snapshot's pairs as JSONL (TRL conversational format)")
    export.add_argument("file", type=Path)
    export.add_argument("--dataset", type=int, help="snapshot id (default: the latest)")
    export.add_argument("--split", choices=SPLITS, default="train", help="which split (train)")
    export.set_defaults(handler=pairs_export)

    train = sub.add_parser("train", help="train, gate and swap in a new LoRA adapter from the feedback")
    train.add_argument("--now", action="store_true", required=True, help="run one training cycle now")
    train.add_argument(
        "--force", action="store_true", help="train even with fewer new pairs than WIKIBOT_TRAIN_MIN_NEW_PAIRS"
    )
    train.add_argument("--json", action="store_true", help="print the report as JSON")
    train.set_defaults(handler=train_command)

    adapters = sub.add_parser("adapters", help="the adapter registry: which LoRA adapter the bot serves")
    adapters_sub = adapters.add_subparsers(dest="adapters_command", required=True)
    listing = adapters_sub.add_parser("list", help="every adapter version, its status and held-out metrics")
    listing.add_argument("--json", action="store_true", help="print the registry as JSON")
    listing.set_defaults(handler=adapters_list)
    promote = adapters_sub.add_parser("promote", help="load VERSION on every vLLM server and make it the active one")
    promote.add_argument("version", type=int)
    promote.set_defaults(handler=adapters_promote)
    adapters_sub.add_parser(
        "rollback", help="go back to the active adapter's parent (or the newest older one, or the base model)"
    ).set_defaults(handler=adapters_rollback)

    sub.add_parser(
        "labels", help="rebuild what search learns from accepted corrections (the scheduler does it every few minutes)"
    ).set_defaults(handler=labels_command)

    scheduler = sub.add_parser("scheduler", help="run the training schedule (WIKIBOT_TRAIN_SCHEDULE) until interrupted")
    scheduler.add_argument("--port", type=int, default=None, help="port of /healthz (WIKIBOT_PORT, 3000)")
    scheduler.set_defaults(handler=scheduler_command)


async def pairs_build(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import Database
    from training.datasets import PersonCap, build_snapshot

    async with Database.open(settings) as db:
        snapshot = await build_snapshot(db, settings.train_heldout_fraction, cap=PersonCap.from_settings(settings))
    print(json.dumps(snapshot.as_dict(), indent=2) if args.json else summary(snapshot))
    return 0


async def pairs_export(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import Database
    from training.datasets import DatasetNotFound, export_jsonl, latest_snapshot

    async with Database.open(settings) as db:
        dataset_id = args.dataset
        if dataset_id is None:
            latest = await latest_snapshot(db)
            if latest is None:
                raise DatasetNotFound("no dataset yet: run `wikibot pairs build` first")
            dataset_id = latest.id
        written = await export_jsonl(db, dataset_id, args.file, args.split)
    print(f"wrote {written} {args.split} pairs of dataset {dataset_id} to {args.file}", file=sys.stderr)
    return 0


def summary(snapshot: DatasetSnapshot) -> str:
    from core.answer_log import WITHHELD_STATS

    s = snapshot.stats
    since = f"since dataset {snapshot.previous_id}, the last trained on" if snapshot.previous_id else "(nothing trained yet)"
    lines = [f"dataset {snapshot.id}: {snapshot.pairs} pairs, {snapshot.new_pairs} new {since}"]
    for split, kinds in snapshot.splits.items():
        lines.append(f"  {split}: " + ", ".join(f"{kind} {n}" for kind, n in kinds.items()))
    lines.append(
        f"  from {s['answers']} answers to {s['prompts']} prompts: {s['rated_up']} rated up, {s['rated_down']} down,"
        f" {s['tied']} tied; {s['corrections']} corrections used ({s['corrections_superseded']} superseded);"
        f" {s['rejected_unpaired']} rejected with nothing better; {s['comments']} comments (not used)"
    )
    counted = {key: s.get(key, 0) for key in ("recited", "reordered", *(f"corrections_{r}" for r in CITATION_RULES))}
    rules = ", ".join(f"{r} {counted[f'corrections_{r}']}" for r in CITATION_RULES if counted[f"corrections_{r}"])
    lines.append(f"  corrections cite by: {rules or 'none'}; {counted['recited']} answers recited in their own words;"
                 f" {counted['reordered']} pairs copied with their sources in another order")  # older snapshots lack some
    if any(s.get(key) for key in WITHHELD_STATS):
        lines.append(
            f"  corrections not used: {s.get('corrections_unconfirmed', 0)} not confirmed by their author,"
            f" {s.get('corrections_awaiting_review', 0)} awaiting a reviewer, {s.get('corrections_rejected', 0)}"
            " rejected by one"
        )
    if s.get("feedback_capped"):
        lines.append(f"  {s['feedback_capped']} votes and corrections left out: one person may shape only so much of"
                     " a snapshot (WIKIBOT_TRAIN_MAX_USER_SHARE)")
    return "\n".join(lines)


async def train_command(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import Database
    from training.cycle import run_cycle  # torch, transformers and TRL take seconds to import
    from training.default_model import default_model_dir, prepare_default_model

    if settings.base_model == str(default_model_dir(settings.data_dir)):
        await asyncio.to_thread(prepare_default_model, settings.data_dir)  # `wikibot up` normally did it already
    async with Database.open(settings) as db:
        report = await run_cycle(settings, db, force=args.force)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return 1 if report.status == "failed" else 0


async def labels_command(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.index import WikiIndex
    from training.labels import refresh_labels

    async with WikiIndex.open(settings) as index:
        refreshed = await refresh_labels(index)
    print(f"relevance labels: {refreshed.labels}, from {refreshed.corrections} accepted corrections (search ranks"
          " their sources higher for questions like theirs)")  # fmt: skip
    return 0


async def adapters_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import Database
    from core.registry import AdapterRegistry

    async with Database.open(settings) as db:
        adapters = await AdapterRegistry(db).list()
    if args.json:
        print(json.dumps([a.as_dict() for a in adapters], indent=2))
        return 0
    if not adapters:
        print("no adapters yet: the base model answers")
    for a in adapters:
        heldout, answers = a.metrics.get("heldout"), a.metrics.get("answers")
        scores = f"accuracy {heldout['accuracy']:.3f}, margin {heldout['mean_margin']:.3f}" if heldout else ""
        if answers:
            scores += (f"; answers cite the right source {answers['cites_right']:.2f}, echo {answers['echo']:.2f}, "
                       f"invalid {answers['invalid']:.2f}")  # fmt: skip
        note = a.error or ""
        line = f"{a.name:<10} {a.status:<9} {a.created_at:%Y-%m-%d %H:%M}  dataset {a.dataset_id}  {scores}  {note}"
        print(line.rstrip())
    return 0


@asynccontextmanager
async def _exclusive(settings: Settings) -> AsyncIterator[Database]:
    """The database, with the training lock held: no training run swaps adapters meanwhile."""
    from core.db import Database
    from core.registry import RegistryError, training_lock

    async with Database.open(settings) as db, training_lock(db) as taken:
        if not taken:
            raise RegistryError("a training run or another swap is in progress; try again when it is done")
        yield db


def _print_swap(report: SwapReport) -> None:
    print(f"{report.activated or 'the base model'} is active (was {report.retired or 'the base model'}); "
          f"{len(report.servers)} server(s), {report.seconds:.2f}s")  # fmt: skip


async def adapters_promote(args: argparse.Namespace, settings: Settings) -> int:
    from training.swap import AdapterSwap

    async with _exclusive(settings) as db:
        _print_swap(await AdapterSwap.from_settings(settings, db).activate(args.version))
    return 0


async def adapters_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from training.swap import AdapterSwap

    async with _exclusive(settings) as db:
        _print_swap(await AdapterSwap.from_settings(settings, db).rollback())
    return 0


async def scheduler_command(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import Database
    from training.schedule import run_scheduler  # it imports the trainer

    async with Database.open(settings) as db:
        await run_scheduler(settings, db, args.port or settings.port)
    return 0

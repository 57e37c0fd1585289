"""`wikibot train`, `wikibot adapters list|promote|rollback`, `wikibot scheduler`.

Handlers import what they use when they run: `wikibot --help` and each command pay only for their own imports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import Settings
    from core.db import Database
    from training.swap import SwapReport


def register(sub: argparse._SubParsersAction) -> None:
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

    scheduler = sub.add_parser("scheduler", help="run the training schedule (WIKIBOT_TRAIN_SCHEDULE) until interrupted")
    scheduler.add_argument("--port", type=int, default=None, help="port of /healthz (WIKIBOT_PORT, 3000)")
    scheduler.set_defaults(handler=scheduler_command)


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


async def adapters_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import Database
    from training.registry import AdapterRegistry

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
    from training.registry import RegistryError, training_lock

    async with Database.open(settings) as db, training_lock(db) as taken:
        if not taken:
            raise RegistryError("a training run or another swap is in progress; try again when it is done")
        yield db


def _print_swap(report: SwapReport) -> None:
    print(f"{report.activated or 'the base model'} is active (was {report.retired or 'the base model'}); "
          f"{len(report.servers)} server(s), {report.seconds:.2f}s")  # fmt: skip


async def adapters_promote(args: argparse.Namespace, settings: Settings) -> int:
    from training.swap import activate

    async with _exclusive(settings) as db:
        _print_swap(await activate(settings, db, args.version))
    return 0


async def adapters_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from training.swap import rollback

    async with _exclusive(settings) as db:
        _print_swap(await rollback(settings, db))
    return 0


async def scheduler_command(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import Database
    from training.schedule import run_scheduler  # it imports the trainer

    async with Database.open(settings) as db:
        await run_scheduler(settings, db, args.port or settings.port)
    return 0

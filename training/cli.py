"""`wikibot pairs build|export`: the training data half of the command line.

Handlers import what they use when they run: `wikibot --help` and each command pay only for their own imports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from training.pairs import CITATION_RULES, SPLITS

if TYPE_CHECKING:
    from core.config import Settings
    from training.datasets import DatasetSnapshot


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
    from training.datasets import WITHHELD_STATS

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

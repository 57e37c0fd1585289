"""`wikibot ingest` and `wikibot search`: the retrieval part of the command line.

Handlers import what they use when they run: `wikibot --help` and each command pay only for their own imports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.models import SEARCH_MODES

if TYPE_CHECKING:
    from core.config import Settings

DEFAULT_SPACE = "wiki"


def register(sub: argparse._SubParsersAction) -> None:
    ingest = sub.add_parser("ingest", help="index a wiki export (folder of Markdown/HTML, or MediaWiki XML dump)")
    ingest.add_argument("path", type=Path)
    ingest.add_argument("--space", default=DEFAULT_SPACE, help=f"wiki space to file the pages under ({DEFAULT_SPACE})")
    ingest.add_argument(
        "--base-url", help="page URL prefix for pages without a `url`; `{path}` in it is replaced by the page path"
    )
    ingest.add_argument(
        "--allow-mass-deletion",
        action="store_true",
        help="delete the pages gone from the source even when they are more than WIKIBOT_INGEST_MAX_DELETE_SHARE",
    )
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(handler=ingest_command)

    search = sub.add_parser("search", help="hybrid search of the indexed wiki")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=None, help="number of results (WIKIBOT_SEARCH_K)")
    search.add_argument("--space", action="append", help="only this space (repeatable)")
    search.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    search.add_argument("--json", action="store_true", help="print the results as JSON")
    search.set_defaults(handler=search_command)


async def ingest_command(args: argparse.Namespace, settings: Settings) -> int:
    """Exit status: 0 done (pages skipped for having no text are no failure), 1 some page failed, 130 interrupted."""
    from retrieval.index import WikiIndex

    async with WikiIndex.open(settings) as index:
        ingestor = index.ingestor(progress=not args.quiet)
        with stop_on_ctrl_c(ingestor.stop):
            report = await ingestor.ingest(
                args.path, args.space, args.base_url, allow_mass_deletion=args.allow_mass_deletion
            )
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return 130 if report.interrupted else 1 if report.failed else 0


@contextmanager
def stop_on_ctrl_c(stop: Callable[[], None]) -> Iterator[None]:
    """The first Ctrl-C calls `stop` (finish the current step, keep what is done); a second one quits at once."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        loop.remove_signal_handler(signal.SIGINT)  # back to KeyboardInterrupt
        print("wikibot: stopping after the current step (Ctrl-C again to quit at once)", file=sys.stderr)
        stop()

    loop.add_signal_handler(signal.SIGINT, first)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def search_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.k is not None and args.k < 1:
        raise ValueError("-k must be at least 1")
    from retrieval.index import WikiIndex

    async with WikiIndex.open(settings) as index:
        hits = await index.search.search(args.query, k=args.k, spaces=args.space, mode=args.mode)
    if args.json:
        print(json.dumps([hit.as_dict() for hit in hits], indent=2))
        return 0
    if not hits:
        print("no results", file=sys.stderr)
    for n, hit in enumerate(hits, start=1):
        where = f"{hit.title} > {hit.section}" if hit.section else hit.title
        snippet = " ".join(hit.text.split())[:160]
        print(f"{n}. {where}  [{hit.space}, score {hit.score:.4f}]\n   {hit.url}\n   {snippet}")
    return 0

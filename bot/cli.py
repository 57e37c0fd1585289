"""`wikibot serve`, `wikibot ask` and `wikibot feedback`.

Handlers import what they use when they run: `wikibot --help` and each command pay only for their own imports.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.answer_log import FeedbackLog
    from core.prompt import Source
    from core.config import Settings

log = logging.getLogger(__name__)
Handler = Callable[[argparse.Namespace, "Settings"], Awaitable[int]]


def register(sub: argparse._SubParsersAction, purge: Handler) -> None:
    """The bot's commands; `purge` runs `wikibot feedback purge` (the app's: it spans the bot's and training's data)."""
    serve_parser = sub.add_parser("serve", help="run the Slack bot (HTTP Events API, or Socket Mode with an app token)")
    serve_parser.add_argument("--port", type=int, default=None, help="HTTP port (WIKIBOT_PORT, 3000)")
    serve_parser.set_defaults(handler=serve_command)

    ask = sub.add_parser("ask", help="answer one question without Slack, with the same pipeline")
    ask.add_argument("question")
    ask.add_argument("--space", action="append", help="only this wiki space (repeatable)")
    ask.add_argument("--json", action="store_true", help="print answer, citations and interaction_id as JSON")
    ask.set_defaults(handler=ask_command)

    feedback = sub.add_parser("feedback", help="feedback people gave on answers")
    feedback_sub = feedback.add_subparsers(dest="feedback_command", required=True)
    listing = feedback_sub.add_parser("list", help="newest feedback first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=feedback_list)
    export = feedback_sub.add_parser("export", help="all feedback as JSON lines, with its question and answer")
    export.add_argument("file", type=Path)
    export.set_defaults(handler=feedback_export)
    purging = feedback_sub.add_parser(
        "purge", help="delete a person's questions and feedback (on request), with every copy in training data and "
        "others' prompts; name the adapters trained on them")
    purging.add_argument("--user", required=True, help="Slack user id, e.g. U0123ABCD")
    purging.set_defaults(handler=purge)


async def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app
    from bot.server import serve
    from bot.services import BotServices
    from bot.llm import check_llm

    async with BotServices.open(settings) as services:
        app = build_app(services)  # fails first when Slack is not configured
        log.info(await check_llm(settings))
        await serve(app, services, args.port or settings.port)
    return 0


async def ask_command(args: argparse.Namespace, settings: Settings) -> int:
    from core.answer_log import AskContext
    from bot.render import plain_answer
    from bot.services import BotServices

    async with BotServices.open(settings) as services:
        answer = await services.answerer.answer(args.question, spaces=args.space, context=AskContext(source="cli"))
    if args.json:
        payload = {
            "answer": answer.text,
            "citations": [_citation(s) for s in answer.cited],
            "uncited_sources": [_citation(s) for s in answer.uncited],
            "interaction_id": answer.interaction_id,
            "status": answer.status,
            "model": answer.model,
            "note": answer.note,
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(plain_answer(answer.text, answer.cited, answer.note, answer.uncited))
    return 0


def _citation(source: Source) -> dict[str, Any]:
    return {"n": source.n, "title": source.title, "section": source.section, "url": source.url}


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


@asynccontextmanager
async def feedback_log(settings: Settings) -> AsyncIterator[FeedbackLog]:
    from core.answer_log import FeedbackLog
    from core.db import Database

    async with Database.open(settings) as db:
        yield FeedbackLog(db)


async def feedback_list(args: argparse.Namespace, settings: Settings) -> int:
    async with feedback_log(settings) as feedback:
        rows = [_row(r) for r in await feedback.list(limit=args.limit)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        what = {1: "+1", -1: "-1"}.get(r["value"], "") if r["kind"] == "rating" else repr(r["text"])
        gone = " (retracted)" if r["retracted_at"] else ""
        gone += f" [{r['correction_status']}]" if r["correction_status"] else ""
        print(f"#{r['id']} {r['created_at'][:19]} {r['user_id']} {r['kind']} {what}{gone} on answer "
              f"#{r['interaction_id']}: {r['question'][:60]!r}")
    if not rows:
        print("no feedback yet")
    return 0


async def feedback_export(args: argparse.Namespace, settings: Settings) -> int:
    async with feedback_log(settings) as feedback:
        rows = await feedback.list()
    with args.file.open("w", encoding="utf-8") as out:
        for row in reversed(rows):
            out.write(json.dumps(_row(row)) + "\n")
    print(f"wrote {len(rows)} feedback rows to {args.file}")
    return 0

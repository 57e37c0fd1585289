"""Who sees what, through the real Bolt app over signed HTTP: requests that are not Slack's, what the App Home
shows whom, where direct messages look, what credentials and purged people leave behind."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from training.datasets import build_snapshot, forget
from wikibot.cli import main
from bot.render import CORRECTION_VIEW
from core.prompt import REMOVED_TURN
from bot.render import CORRECTION_ACTION, FEEDBACK_ACTION
from loopback import slack_events as ev
from loopback.bot_harness import SIGNING_SECRET, RunningBot, running_bot, slack_settings
from loopback.llm_double import scripted_llm
from loopback.slack_api import FakeSlackAPI

pytestmark = pytest.mark.slow
ANSWER = ["Unused vacation days ", "carry over [1]."]


@pytest.fixture
async def llm() -> AsyncIterator[str]:
    async with scripted_llm(ANSWER) as url:
        yield url


@asynccontextmanager
async def bot_with(settings: Settings, slack: FakeSlackAPI, embedder: Embedder, llm: str,
                   **overrides: Any) -> AsyncIterator[RunningBot]:
    configured = slack_settings(settings, slack, llm_base_url=llm, stream_answers=False, **overrides)
    async with running_bot(configured, slack, embedder) as running:
        yield running


@pytest.fixture
async def bot(wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder,
              llm: str) -> AsyncIterator[RunningBot]:
    async with bot_with(settings, slack, embedder, llm) as running:
        yield running


async def logged(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while text not in caplog.text:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", {"Content-Type": "application/json"}),
        (b"payload=%7Bnot-json", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"\xff\xfe{", {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "soon",
                        "X-Slack-Signature": "v0=0"}),
    ],
    ids=["json", "form", "bytes-and-bad-headers"],
)
async def test_a_malformed_unsigned_body_gets_401_before_it_is_parsed(
    bot: RunningBot, body: bytes, headers: dict[str, str], caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session, session.post(bot.url, data=body, headers=headers) as response:
        assert (response.status, await response.json()) == (401, {"error": "invalid request"})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


async def test_direct_messages_see_only_the_spaces_set_for_them(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, llm: str,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO, logger="bot")
    question = "what does AutoGuard Plus cover for windshields?"  # the products space has it
    limited = {"allowed_channels": ["C1"], "channel_spaces": {"C1": ["hr"]}}
    async with bot_with(settings, slack, embedder, llm, **limited) as bot:
        await bot.post(ev.message_im("U2", question, channel="D7"))
        await logged(caplog, "not answering in D7: not allowed by WIKIBOT_ALLOW_DMS and WIKIBOT_DM_SPACES")
        assert await bot.interactions() == [] and not slack.calls_to("chat.postMessage")

    async with bot_with(settings, slack, embedder, llm, **limited, allow_dms=True, dm_spaces=["it"]) as bot:
        await bot.post(ev.message_im("U2", question, channel="D7"))
        (row,) = await bot.wait_answered(1)
    assert row["spaces"] == ["it"] and {s["space"] for s in row["sources"]} <= {"it"}


async def correct_with_the_form(bot: RunningBot, user: str, answer: dict[str, Any], text: str) -> None:
    values = {"answer": {"text": {"type": "plain_text_input", "value": text}},
              "source": {"choice": {"type": "static_select", "selected_option": {"value": "1"}}}}
    metadata = json.dumps({"interaction_id": answer["id"], "channel": answer["channel_id"],
                           "thread_ts": answer["thread_ts"]})
    await ev.async_post_action(bot.url, ev.view_submission(user, CORRECTION_VIEW, values, metadata), SIGNING_SECRET)


async def everything_stored(bot: RunningBot) -> str:
    """Every row of the answer log, the feedback and the training snapshots, as text."""
    async with bot.services.index.db.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT coalesce(json_agg(i), '[]') FROM interactions i)::text"
            " || (SELECT coalesce(json_agg(f), '[]') FROM feedback f)::text"
            " || (SELECT coalesce(json_agg(p), '[]') FROM dataset_pairs p)::text"
        )
        return (await cur.fetchone())[0]  # type: ignore[index]


async def test_purge_removes_every_copy_and_names_the_adapters_trained_on_it(bot: RunningBot, monkeypatch, capsys):
    question = "how does vacation carryover work during my sabbatical in Lisbon?"
    first = ev.app_mention("U1", "C1", f"<@UBOT> {question}")
    await bot.post(first)
    await bot.wait_answered(1)
    await bot.post(ev.app_mention("U2", "C1", "<@UBOT> and for part-time staff?", thread_ts=first["ts"]))
    theirs = (await bot.wait_answered(2))[1]
    assert [m["content"] for m in theirs["prompt_messages"][1:3]] == [question, ANSWER[0] + ANSWER[1]]
    correction = "Part-time staff carry over 3 days, says Ana from payroll [1]."
    await correct_with_the_form(bot, "U1", theirs, correction)
    async with asyncio.timeout(10):
        while correction not in await everything_stored(bot):
            await asyncio.sleep(0.05)
    snapshot = await build_snapshot(bot.services.index.db, heldout_fraction=0.2)
    assert snapshot.splits["train"]["correction"] + snapshot.splits["heldout"]["correction"] >= 1
    async with bot.services.index.db.connection() as conn:
        await conn.execute("INSERT INTO adapters (version, name, path, dataset_id, status)"
                           " VALUES (7, 'wiki-v7', '/gone', %s, 'retired')", (snapshot.id,))
    stored = await everything_stored(bot)
    assert question in stored and correction in stored

    monkeypatch.setenv("WIKIBOT_DATABASE_URL", bot.services.settings.database_url)
    try:
        assert await asyncio.to_thread(main, ["feedback", "purge", "--user", "U1"]) == 0
    finally:
        async with bot.services.index.db.connection() as conn:
            await conn.execute("DELETE FROM adapters WHERE version = 7")
    out = capsys.readouterr().out
    assert "deleted 1 questions and 1 feedback rows of U1" in out
    assert "adapters trained on their data: wiki-v7 (retired)" in out
    stored = await everything_stored(bot)
    assert question not in stored and "Lisbon" not in stored and "Ana from payroll" not in stored
    (kept,) = await bot.interactions()
    assert kept["user_id"] == "U2" and [m["content"] for m in kept["prompt_messages"][1:3]] == [REMOVED_TURN] * 2


async def open_home(bot: RunningBot, user: str) -> str:
    """Open `user`'s App Home; every text of the view published for them."""
    before = len(bot.slack.calls_to("views.publish"))
    await bot.post({"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home", "event_ts": ev.new_ts()})
    published = (await bot.slack.async_wait_for("views.publish", before + 1))[-1].params
    assert published["user_id"] == user
    return json.dumps(published["view"], ensure_ascii=False)


async def test_app_home_shows_admins_only_and_only_corrections_from_their_conversations(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, llm: str,
    caplog: pytest.LogCaptureFixture,
):
    asked = [("U1", "C1", "what is the VPN session timeout?", "C1 fix: twelve hours [1]."),
             ("U2", "D5", "can I take leave for my divorce hearing?", "DM fix: two days of personal leave [1]."),
             ("U4", "C2", "who approves laptop requests?", "C2 fix: the IT desk [1].")]
    slack.set_members("C1", ["U1", "U9"])
    slack.set_members("C2", ["U4"])
    slack.set_members("D5", ["U2", "UBOT"])
    caplog.set_level(logging.WARNING, logger="bot")
    async with bot_with(settings, slack, embedder, llm) as bot:
        assert "WIKIBOT_ADMIN_USERS is empty: no one sees usage and feedback in the App Home" in caplog.text
        assert "Last 7 days" not in await open_home(bot, "U9"), "no admins set: no one sees the numbers"

    async with bot_with(settings, slack, embedder, llm, admin_users=["U9"]) as bot:
        for n, (user, channel, question, correction) in enumerate(asked, 1):
            message = ev.message_im(user, question, channel=channel) if channel.startswith("D") else (
                ev.app_mention(user, channel, f"<@UBOT> {question}"))
            await bot.post(message)
            answer = (await bot.wait_answered(n))[-1]
            await correct_with_the_form(bot, user, answer, correction)
        async with asyncio.timeout(10):
            while not all(c[3] in stored for stored in [await everything_stored(bot)] for c in asked):
                await asyncio.sleep(0.05)
        admin = await open_home(bot, "U9")
        assert "Last 7 days" in admin and "C1 fix: twelve hours" in admin and asked[0][2] in admin
        assert "DM fix" not in admin and "divorce" not in admin, "another person's direct messages"
        assert "C2 fix" not in admin and "laptop" not in admin, "a channel the admin is not in"
        assert "Last 7 days" not in await open_home(bot, "U2"), "not an admin"


async def metric(bot: RunningBot, line: str) -> str | None:
    """The value of one line of /metrics, e.g. 'wikibot_feedback_total{kind="correction"}'."""
    async with aiohttp.ClientSession() as session, session.get(bot.url.replace("/slack/events", "/metrics")) as r:
        found = [row for row in (await r.text()).splitlines() if row.startswith(line + " ")]
    return found[0].split()[-1] if found else None


async def test_a_reply_or_a_form_sent_three_times_is_recorded_and_acknowledged_once(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="bot")
    question = ev.app_mention("U1", "C1", "<@UBOT> what is the vacation carryover rule?")
    await bot.post(question)
    (answer,) = await bot.wait_answered(1)
    reply = ev.channel_message("U5", "C1", "Wrong: it is 12 days since 2024.", thread_ts=question["ts"])
    await asyncio.gather(*(bot.post(reply) for _ in range(3)))  # three envelopes (event ids), one message
    async with asyncio.timeout(10):
        while caplog.text.count(f"reply C1/{reply['ts']} delivered again: recorded once") < 2:
            await asyncio.sleep(0.05)
    values = {"answer": {"text": {"type": "plain_text_input", "value": "Twelve days [1]."}},
              "source": {"choice": {"type": "static_select", "selected_option": {"value": "1"}}}}
    metadata = json.dumps({"interaction_id": answer["id"], "channel": "C1", "thread_ts": answer["thread_ts"]})
    form = ev.view_submission("U6", CORRECTION_VIEW, values, metadata, view_id="V42")
    await asyncio.gather(*(ev.async_post_action(bot.url, form, SIGNING_SECRET) for _ in range(3)))
    async with asyncio.timeout(10):
        while caplog.text.count("correction form V42 sent again: recorded once") < 2:
            await asyncio.sleep(0.05)

    async with bot.services.index.db.connection() as conn:
        cur = await conn.execute("SELECT user_id, via FROM feedback ORDER BY id")
        assert await cur.fetchall() == [("U5", "reply"), ("U6", "modal")]
    asked = [c.params["user"] for c in bot.slack.calls_to("chat.postEphemeral")]
    assert sorted(asked) == ["U5", "U6"], "one question to the reply's author, one thank-you for the form"
    assert await metric(bot, 'wikibot_feedback_total{kind="correction"}') == "2.0"


async def test_feedback_on_a_purged_answer_says_it_cannot_be_saved(bot: RunningBot, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    await bot.post(ev.app_mention("U1", "C1", "<@UBOT> what is the vacation carryover rule?"))
    (answer,) = await bot.wait_answered(1)
    await bot.services.answer_log.purge_user("U1", forget)
    message = {"type": "message", "user": "UBOT", "bot_id": "BBOT", "text": "", "ts": answer["answer_ts"],
               "thread_ts": answer["thread_ts"]}
    for action, value in ((FEEDBACK_ACTION, f"good:{answer['id']}"), (CORRECTION_ACTION, str(answer["id"]))):
        click = ev.block_actions("U8", action, value, channel="C1", message=message)
        assert (await ev.async_post_action(bot.url, click, SIGNING_SECRET))[0] == 200
    told = await bot.slack.async_wait_for("chat.postEphemeral", 2)
    assert all("no longer stored" in c.params["text"] and c.params["user"] == "U8" for c in told)
    assert not bot.slack.calls_to("views.open"), "no form for an answer that is gone"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text

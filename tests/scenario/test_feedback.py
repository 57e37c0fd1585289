"""Feedback through the real Bolt app: reactions, thread corrections, buttons and the correction modal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wikibot.cli import main
from bot.render import CORRECTION_VIEW
from bot.render import CONFIRM_QUESTION, CORRECTION_ACTION, FEEDBACK_ACTION
from loopback import slack_events as ev
from loopback.bot_harness import SIGNING_SECRET, RunningBot

pytestmark = pytest.mark.slow


async def ask(bot: RunningBot, text: str = "<@UBOT> how many sick days do I get?") -> tuple[dict[str, Any], dict]:
    question = ev.app_mention("U1", "C1", text)
    await bot.post(question)
    rows = await bot.wait_answered(len(await bot.interactions()) + 1)
    return question, rows[-1]


async def feedback_rows(bot: RunningBot) -> list[dict[str, Any]]:
    async with bot.services.index.db.connection() as conn:
        cur = await conn.execute(
            "SELECT interaction_id, user_id, kind, via, value, text, source_n, retracted_at IS NOT NULL"
            " FROM feedback ORDER BY id"
        )
        names = ["interaction_id", "user_id", "kind", "via", "value", "text", "source_n", "retracted"]
        return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


async def standing_votes(bot: RunningBot, interaction_id: int) -> dict[str, int]:
    async with bot.services.index.db.connection() as conn:
        cur = await conn.execute(
            "SELECT user_id, value FROM effective_ratings WHERE interaction_id = %s", (interaction_id,)
        )
        return dict(await cur.fetchall())


async def test_reactions_add_remove_readd_and_several_users(bot: RunningBot):
    _, answer = await ask(bot)
    where = ("C1", answer["answer_ts"])
    plus = ev.event_callback(ev.reaction_added("U1", "+1", *where))
    await bot.post_body(plus)
    await bot.post_body(plus, retry_num=1, retry_reason="http_timeout")  # a retry changes nothing
    await bot.post(ev.reaction_added("U2", "thumbsdown", *where))
    await bot.post(ev.reaction_added("U3", "heart::skin-tone-3", *where))
    await bot.post(ev.reaction_added("U3", "x", *where))  # U3's latest vote counts
    await bot.post(ev.reaction_added("U4", "eyes", *where))  # not a rating
    await bot.post(ev.reaction_added("U1", "+1", "C1", "999.000001", item_user="U7"))  # not the bot's answer
    await bot.settled()
    assert await standing_votes(bot, answer["id"]) == {"U1": 1, "U2": -1, "U3": -1}
    assert len(await feedback_rows(bot)) == 4

    await bot.post(ev.reaction_removed("U1", "+1", *where))
    await bot.settled()
    assert await standing_votes(bot, answer["id"]) == {"U2": -1, "U3": -1}
    await bot.post(ev.reaction_added("U1", "thumbsup", *where))
    await bot.settled()
    assert await standing_votes(bot, answer["id"]) == {"U1": 1, "U2": -1, "U3": -1}


async def test_thread_correction_is_stored_acknowledged_edited_and_deleted(bot: RunningBot):
    question, answer = await ask(bot)
    reply = ev.channel_message("U5", "C1", "Wrong: it is 12 sick days since 2024, see the HR page.",
                               thread_ts=question["ts"])
    body = ev.event_callback(reply)
    await bot.post_body(body)
    await bot.post_body(body, retry_num=1, retry_reason="http_timeout")
    await bot.settled()
    (row,) = await feedback_rows(bot)
    assert row | {"text": None} == {
        "interaction_id": answer["id"], "user_id": "U5", "kind": "correction", "via": "reply", "value": None,
        "text": None, "source_n": None, "retracted": False,
    }
    assert row["text"].startswith("Wrong: it is 12")
    ack = bot.slack.calls_to("reactions.add")[-1].params
    assert (ack["name"], ack["timestamp"]) == ("memo", reply["ts"])
    assert bot.slack.calls_to("chat.postEphemeral")[-1].params["text"] == CONFIRM_QUESTION, "its author is asked"
    assert len(await bot.interactions()) == 1, "a correction is not answered as a question"

    await bot.post(ev.message_changed("C1", reply["ts"], "Wrong: it is 10 sick days.", "U5", thread_ts=question["ts"]))
    await bot.settled()
    assert (await feedback_rows(bot))[0]["text"] == "Wrong: it is 10 sick days."
    await bot.post(ev.message_deleted("C1", reply["ts"], thread_ts=question["ts"]))
    await bot.settled()
    assert (await feedback_rows(bot))[0]["retracted"] is True


async def test_comment_and_unrelated_threads(bot: RunningBot):
    question, answer = await ask(bot)
    await bot.post(ev.channel_message("U6", "C1", "thanks, that helps", thread_ts=question["ts"]))
    await bot.post(ev.channel_message("U6", "C1", "Wrong, it is 3 days", thread_ts="1.000001"))  # not the bot's
    await bot.settled()
    rows = await feedback_rows(bot)
    assert [(r["kind"], r["interaction_id"]) for r in rows] == [("comment", answer["id"])]


async def test_feedback_buttons_and_correction_modal(bot: RunningBot):
    _, answer = await ask(bot)
    message = {"type": "message", "user": "UBOT", "bot_id": "BBOT", "text": "", "ts": answer["answer_ts"],
               "thread_ts": answer["thread_ts"]}
    good = ev.block_actions("U8", FEEDBACK_ACTION, f"good:{answer['id']}", channel="C1", message=message,
                            type="feedback_buttons")
    assert (await ev.async_post_action(bot.url, good, SIGNING_SECRET))[0] == 200
    await bot.settled()
    assert await standing_votes(bot, answer["id"]) == {"U8": 1}

    open_modal = ev.block_actions("U8", CORRECTION_ACTION, str(answer["id"]), channel="C1", message=message)
    assert (await ev.async_post_action(bot.url, open_modal, SIGNING_SECRET))[0] == 200
    (call,) = await bot.slack.async_wait_for("views.open")
    view = call.params["view"]
    options = view["blocks"][1]["element"]["options"]
    assert options[0]["value"] == "1" and options[-1]["text"]["text"] == "None of these"
    assert len(options) == len(answer["sources"]) + 1

    values = {"answer": {"text": {"type": "plain_text_input", "value": "Ten sick days a year [2]."}},
              "source": {"choice": {"type": "static_select", "selected_option": {"value": "2"}}}}
    submit = ev.view_submission("U8", CORRECTION_VIEW, values, private_metadata=view["private_metadata"])
    assert (await ev.async_post_action(bot.url, submit, SIGNING_SECRET))[0] == 200
    await bot.settled()
    correction = [r for r in await feedback_rows(bot) if r["kind"] == "correction"]
    assert correction == [{"interaction_id": answer["id"], "user_id": "U8", "kind": "correction", "via": "modal",
                           "value": None, "text": "Ten sick days a year [2].", "source_n": 2, "retracted": False}]

    empty = {"answer": {"text": {"type": "plain_text_input", "value": "  "}}, "source": {"choice": {}}}
    status, _, text = await ev.async_post_action(
        bot.url, ev.view_submission("U8", CORRECTION_VIEW, empty, view["private_metadata"]), SIGNING_SECRET)
    assert status == 200 and json.loads(text)["response_action"] == "errors"


async def test_feedback_commands_list_export_purge(bot: RunningBot, monkeypatch, capsys, tmp_path):
    question, answer = await ask(bot)
    await bot.post(ev.reaction_added("U1", "+1", "C1", answer["answer_ts"]))
    await bot.post(ev.channel_message("U9", "C1", "Actually it changed to 8 days.", thread_ts=question["ts"]))
    await bot.settled()
    monkeypatch.setenv("WIKIBOT_DATABASE_URL", bot.services.settings.database_url)
    assert await asyncio.to_thread(main, ["feedback", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {(r["user_id"], r["kind"]) for r in listed} == {("U1", "rating"), ("U9", "correction")}
    assert listed[0]["question"] == answer["question"]
    assert await asyncio.to_thread(main, ["feedback", "export", str(tmp_path / "fb.jsonl")]) == 0
    assert len((tmp_path / "fb.jsonl").read_text().splitlines()) == 2
    assert await asyncio.to_thread(main, ["feedback", "purge", "--user", "U1"]) == 0
    assert "deleted 1 questions and 1 feedback rows of U1" in capsys.readouterr().out
    assert await bot.interactions() == [] and await feedback_rows(bot) == []

"""Questions through the real Bolt app over signed HTTP, answered by a real vLLM, logged in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from bot.answer import SOURCES_ONLY_LEAD
from wikibot.cli import main
from bot.sources import source_of
from core.prompt import NO_SOURCES_ANSWER, Turn, clean_citations
from bot.services import BotServices
from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from tests.conftest import BASE_MODEL_NAME
from loopback import slack_events as ev
from loopback.bot_harness import RunningBot, running_bot, slack_settings
from loopback.llm_double import scripted_llm
from loopback.slack_api import FakeSlackAPI
from tests.support.vllm_server import MAX_MODEL_LEN

pytestmark = pytest.mark.slow


async def test_mention_is_answered_in_its_thread_with_sources_and_feedback(bot: RunningBot):
    mention = ev.app_mention("U1", "C1", "<@UBOT> how many days of bereavement leave for a grandparent?")
    status, _, _ = await bot.post(mention)
    assert status == 200
    (row,) = await bot.wait_answered(1)

    assert bot.slack.calls_to("reactions.add")[0].params["name"] == "eyes", "working signal on the question"
    start = bot.slack.calls_to("chat.startStream")[0].params
    assert start["channel"] == "C1" and start["thread_ts"] == mention["ts"]
    assert start["recipient_user_id"] == "U1" and start["recipient_team_id"] == "T1"
    final = bot.slack.calls_to("chat.update")[-1].params
    assert final["ts"] == row["answer_ts"]
    types = [b["type"] for b in final["blocks"]]
    assert "context_actions" in types and types[-1] == "context"
    assert "correction" in final["blocks"][-1]["elements"][0]["text"]

    assert row["question"] == "how many days of bereavement leave for a grandparent?"
    assert (row["channel_id"], row["user_id"], row["thread_ts"]) == ("C1", "U1", mention["ts"])
    assert row["status"] == "answered" and row["model"] == BASE_MODEL_NAME
    assert row["prompt_messages"][0]["role"] == "system"
    assert "[1] Bereavement Leave" in row["prompt_messages"][-1]["content"]
    assert row["sources"][0]["title"] == "Bereavement Leave" and row["sources"][0]["n"] == 1
    assert row["sources"][0]["text"] and row["sources"][0]["url"].startswith("https://wiki.harborline.example/hr/")
    assert row["retrieval_ms"] > 0 and row["generation_ms"] > 0 and row["total_ms"] >= row["retrieval_ms"]
    assert (row["answer"], row["cited"]) == clean_citations(row["raw_answer"], len(row["sources"])), (
        "the answer shown is the model's, less citations of sources it was not given")


async def test_retries_and_duplicate_deliveries_get_one_answer(bot: RunningBot):
    mention = ev.app_mention("U1", "C1", "<@UBOT> who handles auto glass claims?")
    body = ev.event_callback(mention)
    same_message = ev.event_callback(ev.channel_message("U1", "C1", mention["text"], ts=mention["ts"]))
    results = await asyncio.gather(
        bot.post_body(body),
        bot.post_body(body, retry_num=1, retry_reason="http_timeout"),
        bot.post_body(body, retry_num=2, retry_reason="http_timeout"),
        bot.post_body(same_message),
    )
    assert [r[0] for r in results] == [200, 200, 200, 200]
    await bot.wait_answered(1)
    await bot.settled()
    assert len(await bot.interactions()) == 1
    assert len(bot.slack.calls_to("chat.startStream")) == 1


async def test_direct_message_is_answered_with_assistant_status(bot: RunningBot):
    await bot.post(ev.message_im("U2", "how do I reset my password?", channel="D7"))
    (row,) = await bot.wait_answered(1)
    assert row["channel_id"] == "D7" and row["status"] == "answered"
    assert bot.slack.calls_to("assistant.threads.setStatus")[0].params["channel_id"] == "D7"


async def test_thread_followup_carries_the_earlier_turn(bot: RunningBot):
    first = ev.app_mention("U1", "C1", "<@UBOT> what is the water damage limit on HomeShield Plus?")
    await bot.post(first)
    (answered,) = await bot.wait_answered(1)
    followup = ev.channel_message("U1", "C1", "and on HomeShield Premier?", thread_ts=first["ts"])
    await bot.post(followup)
    rows = await bot.wait_answered(2)
    second = rows[1]
    assert second["thread_ts"] == first["ts"] and second["question"] == "and on HomeShield Premier?"
    roles = [m["role"] for m in second["prompt_messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert second["prompt_messages"][1]["content"] == answered["question"]
    assert second["prompt_messages"][2]["content"] == answered["answer"]


async def test_a_follow_up_that_names_no_topic_gets_the_threads_sources(bot: RunningBot):
    first = ev.app_mention("U1", "C1", "<@UBOT> what's the SIU hotline extension?")
    await bot.post(first)
    await bot.wait_answered(1)
    await bot.post(ev.app_mention("U1", "C1", "<@UBOT> do i hold the payment while they review it?",
                                  thread_ts=first["ts"]))  # fmt: skip
    second = (await bot.wait_answered(2))[1]
    assert second["sources"][0]["url"].split("#")[0].endswith("/claims/siu-fraud-referral")


async def test_not_answered_feedback_replies_bots_edits_and_other_channels(bot: RunningBot):
    first = ev.app_mention("U1", "C1", "<@UBOT> who approves laptop requests?")
    await bot.post(first)
    await bot.wait_answered(1)
    for event in (
        ev.channel_message("U3", "C1", "That is wrong, IT approves them now.", thread_ts=first["ts"]),
        ev.channel_message("U3", "C1", "just chatting, no thread"),
        ev.bot_message("B9", "C1", "<@UBOT> what is a deductible?"),
        ev.message_changed("C1", first["ts"], "<@UBOT> edited question?", "U1"),
        ev.app_mention("U1", "C999", "<@UBOT> not an allowed channel?"),
    ):
        assert (await bot.post(event))[0] == 200
    await bot.settled()
    assert len(await bot.interactions()) == 1
    assert len(bot.slack.calls_to("chat.startStream")) == 1
    assert all(c.params["channel"] != "C999" for c in bot.slack.calls if "channel" in c.params)


async def test_channel_without_matching_pages_says_so(bot: RunningBot):
    await bot.post(ev.app_mention("U1", "CEMPTY", "<@UBOT> what is the sick leave policy?"))
    (row,) = await bot.wait_answered(1)
    assert row["status"] == "no_sources" and row["model"] is None and row["sources"] == []
    posted = bot.slack.calls_to("chat.postMessage")[-1].params
    assert posted["text"] == NO_SOURCES_ANSWER and posted["thread_ts"]


async def test_unsigned_or_stale_requests_are_rejected(bot: RunningBot):
    body = ev.event_callback(ev.app_mention("U1", "C1", "<@UBOT> hi?"))
    assert (await bot.post_body(body, bad_signature=True))[0] == 401
    assert (await bot.post_body(body, timestamp=1_000_000_000))[0] == 401
    await bot.settled()
    assert await bot.interactions() == []


async def test_unknown_adapter_falls_back_to_the_base_model(bot: RunningBot):
    async with bot.services.index.db.connection() as conn:
        await conn.execute(
            "INSERT INTO adapters (version, name, path, status) VALUES (99, 'wiki-v99', '/nonexistent', 'active')"
        )
    try:
        await bot.post(ev.app_mention("U1", "C1", "<@UBOT> how do I report a security incident?"))
        (row,) = await bot.wait_answered(1)
        assert row["status"] == "answered" and row["model"] == BASE_MODEL_NAME and row["adapter_id"] is None
    finally:
        async with bot.services.index.db.connection() as conn:
            await conn.execute("DELETE FROM adapters WHERE version = 99")


async def test_llm_down_answers_with_sources_and_a_note_that_hides_the_server(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    dead = slack_settings(settings, slack, llm_base_url="http://wikibot:s3cret@127.0.0.1:9/v1", llm_timeout=5)
    async with running_bot(dead, slack, embedder) as bot:
        await bot.post(ev.app_mention("U1", "C1", "<@UBOT> what is the vacation carryover rule?"))
        (row,) = await bot.wait_answered(1)
    assert row["status"] == "llm_error"
    assert row["error"] == "unreachable: cannot reach the LLM at http://wikibot:***@127.0.0.1:9/v1"
    posted = slack.calls_to("chat.postMessage")[-1].params
    assert posted["text"] == SOURCES_ONLY_LEAD
    texts = " ".join(str(b) for b in posted["blocks"])
    assert "The language model is not available" in texts and "127.0.0.1" not in texts
    assert "Sources" in texts and "wiki.harborline.example" in texts
    assert "cannot reach the LLM at http://wikibot:***@127.0.0.1:9/v1" in caplog.text
    assert "s3cret" not in caplog.text + str(slack.calls)


async def test_llm_that_never_answers_times_out_to_sources(wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI,
                                                           embedder: Embedder):
    async with scripted_llm(["never sent"], stall_after=0) as llm_url:
        stuck = slack_settings(settings, slack, llm_base_url=llm_url, llm_timeout=1)
        async with running_bot(stuck, slack, embedder) as bot:
            await bot.post(ev.app_mention("U1", "C1", "<@UBOT> what is the vacation carryover rule?"))
            (row,) = await bot.wait_answered(1)
    assert row["status"] == "llm_error" and row["error"] == "timeout: the LLM did not answer within 1s"
    assert not slack.calls_to("chat.startStream"), "nothing was streamed, so nothing to replace"
    posted = slack.calls_to("chat.postMessage")[-1].params
    assert posted["text"] == SOURCES_ONLY_LEAD
    texts = " ".join(str(b) for b in posted["blocks"])
    assert "did not answer within 1s" in texts and "wiki.harborline.example" in texts


async def test_answer_cut_off_by_the_timeout_keeps_what_was_streamed(wiki: WikiIndex, settings: Settings,
                                                                     slack: FakeSlackAPI, embedder: Embedder):
    async with scripted_llm(["Unused vacation days ", "carry over [1]", " and"], stall_after=2) as llm_url:
        slow = slack_settings(settings, slack, llm_base_url=llm_url, llm_timeout=1)
        async with running_bot(slow, slack, embedder) as bot:
            await bot.post(ev.app_mention("U1", "C1", "<@UBOT> what is the vacation carryover rule?"))
            (row,) = await bot.wait_answered(1)
    assert row["status"] == "answered" and row["error"] is None and row["cited"] == [1]
    assert row["answer"].startswith("Unused vacation days carry over [1]") and "cut off" in row["answer"]
    streamed = [chunk["text"] for method in ("chat.startStream", "chat.appendStream", "chat.stopStream")
                for call in slack.calls_to(method) for chunk in call.params.get("chunks", [])]
    assert "".join(streamed) == "Unused vacation days carry over [1]", "what came in time was streamed"
    final = slack.calls_to("chat.update")[-1].params
    assert "cut off" in final["text"] and "Sources" in " ".join(str(b) for b in final["blocks"])


async def test_answer_citing_nothing_shows_the_best_sources_it_did_not_cite(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="bot")
    async with scripted_llm(["Unused vacation days ", "carry over [9]."]) as llm_url:  # no source 9: dropped
        configured = slack_settings(settings, slack, llm_base_url=llm_url)
        async with running_bot(configured, slack, embedder) as bot:
            await bot.post(ev.app_mention("U1", "C1", "<@UBOT> what is the vacation carryover rule?"))
            (row,) = await bot.wait_answered(1)
    assert row["status"] == "answered" and row["answer"] == "Unused vacation days carry over." and row["cited"] == []
    assert len(row["sources"]) > 3
    final = slack.calls_to("chat.update")[-1].params
    (listed,) = [e["text"] for b in final["blocks"] if b["type"] == "context" for e in b["elements"]
                 if "Sources" in e["text"]]
    assert listed.startswith("*Sources the answer did not cite*")
    links = [f"<{s['url']}|" for s in row["sources"]]
    assert listed.index(links[0]) < listed.index(links[1]) < listed.index(links[2]) and links[3] not in listed
    assert f"answer {row['id']} cites no source" in caplog.text
    assert "cannot count prompt tokens" in caplog.text, "the double has no /tokenize: answered all the same"


async def test_prompt_longer_than_the_model_context_drops_the_lowest_ranked_sources(
    wiki: WikiIndex, settings: Settings, embedder: Embedder, vllm_url: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="bot")
    question, answer_tokens = "what does AutoGuard Plus cover for windshields?", 384
    roomy = settings.model_copy(
        update={"llm_base_url": vllm_url, "prompt_max_chars": 20_000, "llm_max_tokens": answer_tokens}
    )
    async with BotServices.open(roomy, embedder=embedder) as services:
        answer = await services.answerer.answer(question)
        assert answer.status == "answered" and answer.model == BASE_MODEL_NAME
        row = await services.answer_log.interaction(answer.interaction_id)
        assert row is not None
        size = await services.answerer.llm.count_tokens(row["prompt_messages"], BASE_MODEL_NAME)
    assert size is not None and size.context == MAX_MODEL_LEN and size.tokens + answer_tokens <= MAX_MODEL_LEN
    ranked = await wiki.search.search(question)
    kept = [s["chunk_id"] for s in row["sources"]]
    assert 1 <= len(kept) < len(ranked) and kept == [h.chunk_id for h in ranked[: len(kept)]]
    dropped = ", ".join(f"[{n}] {source_of(n, h).label}" for n, h in enumerate(ranked, 1) if n > len(kept))
    assert "dropped sources " + dropped in caplog.text


async def test_thread_too_long_for_the_model_context_gets_the_best_sources_and_a_note(
    wiki: WikiIndex, settings: Settings, embedder: Embedder, vllm_url: str
):
    history = [Turn("and for the deductible?", "The deductible depends on the plan. " * 300)]
    configured = settings.model_copy(update={"llm_base_url": vllm_url, "llm_max_tokens": 16})
    async with BotServices.open(configured, embedder=embedder) as services:
        answer = await services.answerer.answer("what does AutoGuard Plus cover for windshields?", history=history)
    assert answer.status == "llm_error" and answer.text == SOURCES_ONLY_LEAD and len(answer.cited) == 3
    assert f"too long for the model's context of {MAX_MODEL_LEN} tokens" in (answer.note or "")


async def test_ask_command_runs_the_same_pipeline_without_slack(wiki: WikiIndex, vllm_url: str, monkeypatch, capsys):
    monkeypatch.setenv("WIKIBOT_DATABASE_URL", wiki.settings.database_url)
    monkeypatch.setenv("WIKIBOT_LLM_BASE_URL", vllm_url)
    monkeypatch.setenv("WIKIBOT_PROMPT_MAX_CHARS", "1500")
    monkeypatch.setenv("WIKIBOT_LLM_MAX_TOKENS", "16")
    args = ["ask", "what does AutoGuard Plus cover for windshields?", "--space", "products", "--json"]
    assert await asyncio.to_thread(main, args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "answered" and out["model"] == BASE_MODEL_NAME and out["answer"]
    assert all({"n", "title", "url"} <= set(c) for c in out["citations"])
    assert bool(out["citations"]) != bool(out["uncited_sources"]), "sources to check, cited or else the best ones"
    async with wiki.db.connection() as conn:
        cur = await conn.execute("SELECT source, spaces, question FROM interactions WHERE id = %s",
                                 (out["interaction_id"],))
        assert await cur.fetchone() == ("cli", ["products"], args[1])

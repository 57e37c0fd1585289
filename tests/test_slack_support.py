"""Tests for the Slack test doubles: FakeSlackAPI with real slack_sdk clients, and the signed sender with Bolt."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from loopback import slack_events as ev
from loopback.slack_api import FakeSlackAPI

SECRET = "test-signing-secret"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as api:
        yield api


def test_base_url_shape(fake: FakeSlackAPI) -> None:
    assert fake.base_url.startswith("http://127.0.0.1:") and fake.base_url.endswith("/api/")


async def test_post_message_records_parsed_blocks(fake: FakeSlackAPI) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    resp = await client.chat_postMessage(channel="C1", text="hello", blocks=BLOCKS, thread_ts="1.000001")
    (call,) = fake.calls_to("chat.postMessage")
    assert call.token == "xoxb-test"
    assert call.params["blocks"] == BLOCKS and call.params["thread_ts"] == "1.000001"
    assert resp["message"]["bot_id"] == "BBOT"
    second = await client.chat_postMessage(channel="C1", text="again")
    assert float(second["ts"]) > float(resp["ts"])
    assert fake.posted_messages() == [("C1", resp["ts"], "hello", BLOCKS), ("C1", second["ts"], "again", None)]
    # AsyncWebClient sends params= methods (reactions.add, auth.test) in the query string.
    await client.reactions_add(channel="C1", timestamp=resp["ts"], name="thumbsup")
    assert fake.calls_to("reactions.add")[0].params == {"channel": "C1", "timestamp": resp["ts"], "name": "thumbsup"}
    assert (await client.auth_test())["bot_user_id"] == "UBOT"


def test_sync_client_form_posts_decode_json_fields(fake: FakeSlackAPI) -> None:
    client = WebClient(token="xoxb-sync", base_url=fake.base_url)
    ts = client.chat_postMessage(channel="C2", text="x")["ts"]
    client.api_call("chat.update", data={"channel": "C2", "ts": ts, "text": "y", "blocks": json.dumps(BLOCKS)})
    update = fake.calls_to("chat.update")[0]
    assert update.params["blocks"] == BLOCKS and update.token == "xoxb-sync"
    assert fake.posted_messages()[0].text == "y"
    client.chat_delete(channel="C2", ts=ts)
    assert fake.posted_messages() == []
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C2", ts=ts, text="z")
    assert err.value.response["error"] == "message_not_found"


async def test_chat_stream_end_to_end(fake: FakeSlackAPI) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    stream = await client.chat_stream(
        channel="C1", thread_ts="1700000000.000100", recipient_team_id="T1", recipient_user_id="U1", buffer_size=8
    )
    for piece in ["Hello", ", wor", "ld! ", "This is ", "streamed."]:
        await stream.append(markdown_text=piece)
    await stream.stop(blocks=BLOCKS)
    assert fake.calls_to("chat.startStream")[0].params["thread_ts"] == "1700000000.000100"
    assert len(fake.calls_to("chat.appendStream")) >= 1 and len(fake.calls_to("chat.stopStream")) == 1
    (msg,) = fake.posted_messages()
    assert (msg.channel, msg.ts, msg.text, msg.blocks) == ("C1", stream.ts, "Hello, world! This is streamed.", BLOCKS)
    with pytest.raises(SlackApiError) as err:  # the stream is closed now
        await client.chat_appendStream(channel="C1", ts=msg.ts, markdown_text="late")
    assert err.value.response["error"] == "message_not_in_streaming_state"


async def test_fail_and_retry(fake: FakeSlackAPI) -> None:
    plain = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    fake.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as err:
        await plain.chat_postMessage(channel="C404", text="x")
    assert err.value.response.status_code == 200 and err.value.response["error"] == "channel_not_found"

    fake.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await plain.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429 and err.value.response.headers["Retry-After"] == "7"

    retrying = AsyncWebClient(
        token="xoxb-test", base_url=fake.base_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    )
    fake.fail("chat.postMessage", status=429, retry_after=0, times=2)
    before = len(fake.calls_to("chat.postMessage"))
    resp = await retrying.chat_postMessage(channel="C1", text="eventually")
    assert resp["ok"] and len(fake.calls_to("chat.postMessage")) == before + 3
    assert [m.text for m in fake.posted_messages()] == ["eventually"]


async def test_seeded_thread_and_wait_for(fake: FakeSlackAPI) -> None:
    fake.seed_thread("C1", "1700000000.000100", [{"user": "U1", "text": "q?"}, {"user": "U2", "text": "a"}])
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    await client.chat_postMessage(channel="C1", thread_ts="1700000000.000100", text="bot reply")
    replies = await client.conversations_replies(channel="C1", ts="1700000000.000100")
    assert [m["text"] for m in replies["messages"]] == ["q?", "a", "bot reply"]
    history = await client.conversations_history(channel="C1")
    assert [m["text"] for m in history["messages"]] == ["q?"]
    assert (await client.users_info(user="U1"))["user"]["id"] == "U1"
    assert len(await fake.async_wait_for("chat.postMessage")) == 1
    with pytest.raises(TimeoutError, match=r"conversations\.replies"):
        fake.wait_for("chat.delete", timeout=0.1)


# --- signed sender against a real Bolt AsyncApp served by aiohttp on port 0 ---------------------------------


async def _serve(app: AsyncApp) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/slack/events"


@pytest.fixture
async def bolt(fake: FakeSlackAPI) -> AsyncIterator[tuple[AsyncApp, str, dict[str, Any]]]:
    app = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token="xoxb-bolt", base_url=fake.base_url))
    seen: dict[str, Any] = {}

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any, request: Any) -> None:
        seen["mention"], seen["retry_num"] = event, request.headers.get("x-slack-retry-num")
        await say(text="pong", thread_ts=event["ts"])

    @app.action("approve")
    async def on_approve(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen["action"] = body

    runner, url = await _serve(app)
    yield app, url, seen
    await runner.cleanup()


async def test_signed_app_mention_reaches_listener(
    fake: FakeSlackAPI, bolt: tuple[AsyncApp, str, dict[str, Any]]
) -> None:
    _, url, seen = bolt
    event = ev.app_mention("U1", "C1", "ping")
    status, _, _ = await ev.async_post_event(url, ev.event_callback(event), SECRET, retry_num=1, retry_reason="x")
    assert status == 200
    (reply,) = await fake.async_wait_for("chat.postMessage")
    assert reply.params["text"] == "pong" and reply.params["thread_ts"] == event["ts"] and reply.token == "xoxb-bolt"
    assert seen["mention"]["text"] == "<@UBOT> ping" and seen["retry_num"] == ["1"]  # Bolt keeps header lists
    assert fake.calls_to("auth.test")[0].token == "xoxb-bolt"


async def test_sync_sender_and_block_action(fake: FakeSlackAPI, bolt: tuple[AsyncApp, str, dict[str, Any]]) -> None:
    _, url, seen = bolt
    payload = ev.block_actions("U1", "approve", "yes", channel="C1")
    status, _, _ = await asyncio.to_thread(ev.post_action, url, payload, SECRET)  # urllib blocks: keep loop free
    assert status == 200
    assert seen["action"]["actions"][0]["value"] == "yes" and seen["action"]["user"]["id"] == "U1"


async def test_bad_or_stale_signature_is_rejected(
    fake: FakeSlackAPI, bolt: tuple[AsyncApp, str, dict[str, Any]]
) -> None:
    _, url, seen = bolt
    body = ev.event_callback(ev.app_mention("U1", "C1", "ping"))
    assert (await ev.async_post_event(url, body, SECRET, bad_signature=True))[0] == 401
    assert (await ev.async_post_event(url, body, SECRET, timestamp=int(time.time()) - 600))[0] == 401
    # a request that fails verification gets its 401 before any listener could start: nothing to wait for
    assert "mention" not in seen and fake.calls_to("chat.postMessage") == []


def test_builders_have_real_shapes() -> None:
    outer = ev.event_callback(ev.message_im("U1", "hi"), event_id="Ev1")
    assert outer["type"] == "event_callback" and outer["event_id"] == "Ev1"
    assert outer["authorizations"][0]["user_id"] == "UBOT" and outer["event"]["channel_type"] == "im"
    changed = ev.message_changed("C1", "1.000001", "new", "U1", thread_ts="1.000000")
    assert changed["subtype"] == "message_changed" and changed["message"]["thread_ts"] == "1.000000"
    assert changed["message"]["ts"] == changed["previous_message"]["ts"] == "1.000001"
    assert ev.message_deleted("C1", "1.000001")["deleted_ts"] == "1.000001"
    assert ev.reaction_removed("U1", "x", "C1", "1.2")["item"] == {"type": "message", "channel": "C1", "ts": "1.2"}
    assert ev.bot_message("B9", "C1", "beep")["subtype"] == "bot_message"
    started = ev.assistant_thread_started("U1", context_channel_id="C9")
    assert started["assistant_thread"]["context"]["channel_id"] == "C9"
    submission = ev.view_submission("U1", "cb", {"b": {"a": {"type": "plain_text_input", "value": "v"}}})
    assert submission["view"]["state"]["values"]["b"]["a"]["value"] == "v"
    assert ev.form_body({"a": 1}).startswith("payload=")

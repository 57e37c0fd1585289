"""A fake Slack Web API: a real HTTP server on 127.0.0.1 that records every call.

Point slack_sdk at it with ``AsyncWebClient(base_url=fake.base_url)``. Requests to paths outside
``/api/`` (e.g. a ``response_url`` aimed here) are recorded with the path as the method name.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qsl, urlsplit

Json = dict[str, Any]
# Fields sent as JSON strings inside form/query params; decoded so tests see lists/dicts.
JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata", "chunks", "prompts", "unfurls", "message"})


@dataclass(frozen=True)
class Call:
    """One request: method name, query+body params merged, bearer token."""

    method: str
    params: Json
    token: str | None


class PostedMessage(NamedTuple):
    """A message the bot posted or streamed, as it stands now."""

    channel: str
    ts: str
    text: str
    blocks: list[Json] | None


class FakeSlackAPI:
    """Fake Slack Web API served from a daemon thread; use as a context manager."""

    def __init__(self, bot_user_id: str = "UBOT", bot_id: str = "BBOT", team_id: str = "T1", app_id: str = "A1"):
        """Identity returned by auth.test and stamped on posted messages."""
        self.bot_user_id, self.bot_id, self.team_id, self.app_id = bot_user_id, bot_id, team_id, app_id
        self._cond = threading.Condition()  # guards all state below (RLock inside)
        self._calls: list[Call] = []
        self._failures: dict[str, deque[tuple[str, int, int]]] = defaultdict(deque)
        self._messages: dict[str, list[Json]] = defaultdict(list)  # channel -> seeded + posted messages
        self._posted: list[tuple[str, Json]] = []
        self._deleted: set[tuple[str, str]] = set()
        self._streaming: set[tuple[str, str]] = set()
        self._channel_members: dict[str, list[str]] = {}  # channel -> member user ids (set_members)
        self._last_us = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[str, Callable[[Json], Json]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": lambda p: {"ok": True, "message_ts": self._next_ts()},
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": lambda p: self._append_stream(p, stop=True),
            **dict.fromkeys(("views.open", "views.publish", "views.update"), self._view),
            "conversations.replies": lambda p: self._listing(p, newest_first=False),
            "conversations.history": lambda p: self._listing(p, newest_first=True),
            "users.info": self._user_info,
            "conversations.members": self._members,
            "apps.connections.open": self._connections_open,
        }
        self.socket_mode_url: str | None = None  # what apps.connections.open hands out (tests/support/socket_mode.py)

    def __enter__(self) -> Self:
        self._server = _Server(self)
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="FakeSlackAPI", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/``, as WebClient/AsyncWebClient(base_url=...) expect."""
        if self._server is None:
            raise RuntimeError("FakeSlackAPI is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    # --- test-facing API -------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self._calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Block until ``count`` calls to ``method`` have arrived; return them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls_to(method)) >= count, timeout):
                got = [c.method for c in self._calls]
                raise TimeoutError(f"wanted {count} call(s) to {method} within {timeout}s; received {got}")
            return self.calls_to(method)

    async def async_wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """``wait_for`` that leaves the running event loop free (use when the bot shares the loop)."""
        return await asyncio.to_thread(self.wait_for, method, count, timeout)

    def fail(
        self, method: str, error: str = "ratelimited", status: int = 200, times: int = 1, retry_after: int = 1
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail; status 429 adds a Retry-After header."""
        with self._cond:
            self._failures[method].extend([(error, status, retry_after)] * times)

    def seed_thread(self, channel: str, thread_ts: str, messages: list[Json]) -> None:
        """Add thread messages; a missing ``ts`` is generated (the first defaults to ``thread_ts``)."""
        with self._cond:
            for i, m in enumerate(messages):
                msg = {"type": "message", **m, "thread_ts": m.get("thread_ts", thread_ts)}
                msg.setdefault("ts", thread_ts if i == 0 else self._next_ts())
                self._messages[channel].append(msg)

    def set_members(self, channel: str, users: list[str]) -> None:
        """Who conversations.members lists for ``channel``; a channel never set is unknown (channel_not_found)."""
        with self._cond:
            self._channel_members[channel] = list(users)

    def posted_messages(self) -> list[PostedMessage]:
        """Bot messages (posted or streamed) in post order, edits applied, deleted ones dropped."""
        with self._cond:
            live = [(ch, m) for ch, m in self._posted if (ch, m["ts"]) not in self._deleted]
            return [PostedMessage(ch, m["ts"], m.get("text", ""), m.get("blocks")) for ch, m in live]

    # --- request handling --------------------------------------------------------------------
    def _handle(self, method: str, params: Json, token: str | None) -> tuple[int, Json, dict[str, str]]:
        with self._cond:
            self._calls.append(Call(method, params, token))
            self._cond.notify_all()
            if self._failures[method]:
                error, status, retry_after = self._failures[method].popleft()
                headers = {"Retry-After": str(retry_after)} if status == 429 else {}
                return status, {"ok": False, "error": error}, headers
            route = self._routes.get(method)
            return 200, route(params) if route else {"ok": True}, {}

    def _next_ts(self) -> str:
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)  # strictly increasing
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _find(self, p: Json) -> Json | None:
        channel, ts = str(p.get("channel")), str(p.get("ts"))
        if (channel, ts) in self._deleted:
            return None
        return next((m for m in self._messages[channel] if m["ts"] == ts), None)

    def _new_message(self, p: Json, text: str) -> Json:
        msg: Json = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id}
        msg.update(team=self.team_id, text=text, ts=self._next_ts())
        msg.update({k: p[k] for k in ("thread_ts", "blocks", "attachments", "metadata") if p.get(k)})
        self._messages[str(p.get("channel"))].append(msg)
        self._posted.append((str(p.get("channel")), msg))
        return msg

    def _auth_test(self, p: Json) -> Json:
        ids = {"team_id": self.team_id, "user_id": self.bot_user_id, "bot_user_id": self.bot_user_id}
        body = {"ok": True, "url": "https://test.slack.com/", "team": "Test Team", "user": "bot", **ids}
        return body | {"bot_id": self.bot_id, "is_enterprise_install": False}

    def _post_message(self, p: Json) -> Json:
        msg = self._new_message(p, str(p.get("text", "")))
        return {"ok": True, "channel": p.get("channel"), "ts": msg["ts"], "message": dict(msg)}

    def _update(self, p: Json) -> Json:
        if (msg := self._find(p)) is None:
            return {"ok": False, "error": "message_not_found"}
        msg.update({k: p[k] for k in ("text", "blocks", "attachments", "metadata") if k in p})
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"ok": True, "channel": p["channel"], "ts": p["ts"], "text": msg.get("text", ""), "message": dict(msg)}

    def _delete(self, p: Json) -> Json:
        if self._find(p) is None:
            return {"ok": False, "error": "message_not_found"}
        self._deleted.add((str(p["channel"]), str(p["ts"])))
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    @staticmethod
    def _stream_text(p: Json) -> str:
        """markdown_text plus the text of any markdown_text chunks (slack_sdk's chat_stream sends chunks)."""
        chunks = [c for c in p.get("chunks") or [] if isinstance(c, dict) and c.get("type") == "markdown_text"]
        return str(p.get("markdown_text") or "") + "".join(str(c.get("text", "")) for c in chunks)

    def _start_stream(self, p: Json) -> Json:
        msg = self._new_message(p, self._stream_text(p))
        self._streaming.add((str(p.get("channel")), msg["ts"]))
        return {"ok": True, "channel": p.get("channel"), "ts": msg["ts"]}

    def _append_stream(self, p: Json, stop: bool = False) -> Json:
        if (msg := self._find(p)) is None:
            return {"ok": False, "error": "message_not_found"}
        key = (str(p["channel"]), str(p["ts"]))
        if key not in self._streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        msg["text"] = msg.get("text", "") + self._stream_text(p)
        if not stop:
            return {"ok": True, "channel": key[0], "ts": key[1]}
        self._streaming.discard(key)
        msg.update({k: p[k] for k in ("blocks", "metadata") if p.get(k)})
        return {"ok": True, "channel": key[0], "ts": key[1], "message": dict(msg)}

    def _view(self, p: Json) -> Json:
        view = p["view"] if isinstance(p.get("view"), dict) else {}
        view_id = p.get("view_id") or "V" + self._next_ts().replace(".", "")
        meta = {"id": view_id, "team_id": self.team_id, "app_id": self.app_id, "bot_id": self.bot_id}
        return {"ok": True, "view": {**meta, "hash": self._next_ts(), "state": {"values": {}}, **view}}

    def _listing(self, p: Json, newest_first: bool) -> Json:
        """conversations.history (top-level, newest first) or .replies (thread of ``ts``)."""
        channel, ts = str(p.get("channel")), p.get("ts")
        msgs = [m for m in self._messages[channel] if (channel, m["ts"]) not in self._deleted]
        if ts:  # replies: the parent and its thread
            msgs = [m for m in msgs if ts in (m["ts"], m.get("thread_ts"))]
        else:  # history: top-level messages only
            msgs = [m for m in msgs if m.get("thread_ts", m["ts"]) == m["ts"]]
        msgs.sort(key=lambda m: float(m["ts"]), reverse=newest_first)
        cap = int(p.get("limit") or len(msgs))
        page = [dict(m) for m in msgs[:cap]]
        return {"ok": True, "messages": page, "has_more": len(msgs) > cap, "response_metadata": {"next_cursor": ""}}

    def _members(self, p: Json) -> Json:
        """conversations.members, in pages of ``limit`` (the cursor is the offset)."""
        channel = str(p.get("channel"))
        if channel not in self._channel_members:
            return {"ok": False, "error": "channel_not_found"}
        members, start = self._channel_members[channel], int(p.get("cursor") or 0)
        end = start + int(p.get("limit") or 100)
        cursor = str(end) if end < len(members) else ""
        return {"ok": True, "members": members[start:end], "response_metadata": {"next_cursor": cursor}}

    def _connections_open(self, p: Json) -> Json:
        if self.socket_mode_url is None:
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.socket_mode_url}

    def _user_info(self, p: Json) -> Json:
        uid = str(p.get("user"))
        name = "bot" if uid == self.bot_user_id else uid.lower()
        profile = {"real_name": f"User {uid}", "display_name": name}
        user = {"id": uid, "team_id": self.team_id, "name": name, "real_name": profile["real_name"], "tz": "UTC"}
        return {"ok": True, "user": {**user, "deleted": False, "is_bot": uid == self.bot_user_id, "profile": profile}}


def _decode(pairs: list[tuple[str, str]]) -> Json:
    """Form/query pairs to a dict, JSON-decoding JSON_FIELDS values (e.g. ``blocks``)."""
    return {k: _maybe_json(v) if k in JSON_FIELDS else v for k, v in pairs}


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value) if value.startswith(("[", "{")) else value
    except ValueError:
        return value


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        method = url.path.removeprefix("/api/")
        params = _decode(parse_qsl(url.query, keep_blank_values=True))  # AsyncWebClient puts params= here
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if raw and self.headers.get_content_type() == "application/json":
            params.update(json.loads(raw))
        elif raw and self.headers.get_content_type() == "application/x-www-form-urlencoded":
            params.update(_decode(parse_qsl(raw.decode(), keep_blank_values=True)))
        auth, body_token = self.headers.get("Authorization", ""), params.pop("token", None)
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else body_token
        status, body, headers = self.server.fake._handle(method, params, token)
        data = json.dumps(body).encode()
        self.send_response(status)
        headers |= {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlackAPI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

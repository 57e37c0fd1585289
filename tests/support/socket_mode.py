"""A Socket Mode endpoint on loopback: the WebSocket Slack hands out in `apps.connections.open`.

It sends envelopes (events_api, interactive, ...) to the connected app and collects the app's acks, the way
Slack's servers do; pings are answered by aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Self

from aiohttp import WSMsgType, web

Json = dict[str, Any]


class SocketModeServer:
    def __init__(self) -> None:
        self._connected = asyncio.Event()
        self._socket: web.WebSocketResponse | None = None
        self._acks: dict[str, asyncio.Future[Json]] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}/link"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        self._connected.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                ack = json.loads(message.data)
                if (future := self._acks.get(ack.get("envelope_id", ""))) is not None and not future.done():
                    future.set_result(ack)
        return socket

    async def send(self, payload: Json, kind: str = "events_api", timeout: float = 30) -> Json:
        """Deliver `payload` in an envelope once an app is connected; return the app's ack."""
        await asyncio.wait_for(self._connected.wait(), timeout)
        assert self._socket is not None
        envelope_id = str(uuid.uuid4())
        self._acks[envelope_id] = asyncio.get_running_loop().create_future()
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": False,
                    "retry_attempt": 0, "retry_reason": ""}
        await self._socket.send_json(envelope)
        return await asyncio.wait_for(self._acks[envelope_id], timeout)

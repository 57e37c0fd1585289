"""An OpenAI-compatible chat endpoint on loopback that streams a script: for an LLM that is fast, slow or stalls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def scripted_llm(
    pieces: Sequence[str], stall_after: int | None = None, after_pieces: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[str]:
    """Yield the base URL (…/v1) of a server that streams `pieces` as chat completion chunks (SSE).

    `stall_after`: stop sending after that many pieces and keep the response open, like a stuck model.
    `after_pieces`: awaited once the pieces are sent, before the stream ends (to break something meanwhile).
    """
    released = asyncio.Event()  # a stalled response waits for it: set when the server closes

    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.force_close()  # no idle keep-alive connection outlives the answer (RunningBot.settled waits on it)
        await response.prepare(request)
        for piece in pieces[:stall_after]:
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if after_pieces is not None:
            await after_pieces()
        if stall_after is not None:
            await released.wait()  # the client has given up by now: nothing more to send it
            return response
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        released.set()
        await runner.cleanup()

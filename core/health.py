"""/healthz, the same for every process: 503 naming what is wrong while a check fails, else 200."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core.db import Database

Check = Callable[[], Awaitable[dict[str, str]]]  # what is wrong, by part ({} while healthy)


def database_check(db: Database) -> Check:
    async def check() -> dict[str, str]:
        problem = await db.problem()
        return {} if problem is None else {"database": problem}

    return check


def healthz(
    *checks: Check, details: Callable[[], dict[str, Any]] = dict
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A /healthz handler: the first failing check's problems with 503; else "ok" and `details()` with 200."""

    async def handler(request: web.Request) -> web.Response:
        for check in checks:
            if problems := await check():
                return web.json_response({"status": "unhealthy", **problems}, status=503)
        return web.json_response({"status": "ok", **details()})

    return handler

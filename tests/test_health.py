"""/healthz as every process serves it (core.health), against the real database."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.config import Settings
from core.db import Database
from core.health import database_check, healthz


async def get(app: web.Application) -> tuple[int, dict]:
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/healthz")
        return response.status, await response.json()


async def test_healthz_is_ok_while_the_database_answers_and_names_it_when_it_does_not(settings: Settings):
    async def fine() -> dict[str, str]:
        return {}

    app = web.Application()
    async with Database.open(settings) as db:
        app.router.add_get("/healthz", healthz(database_check(db), fine, details=lambda: {"next": "soon"}))
        assert await get(app) == (200, {"status": "ok", "next": "soon"})
    status, body = await get(app)  # the pool is closed: the database no longer answers
    assert status == 503 and body["status"] == "unhealthy" and body["database"]

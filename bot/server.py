"""Running the bot: HTTP mode (Events API on /slack/events) or Socket Mode, with /healthz beside it."""

from __future__ import annotations

import asyncio
import gc
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from bot.pacing import AcksFirst
from bot.services import BotServices
from core.health import database_check, healthz

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


def web_app(services: BotServices, app: AsyncApp | None = None) -> web.Application:
    """/healthz and /metrics (Prometheus), and with a Bolt app its Events API and interactivity endpoint."""
    web_application = app.web_app(path=EVENTS_PATH) if app is not None else web.Application()
    web_application.middlewares.append(paced(services.acks))  # first: from each request's arrival
    if app is not None and services.settings.slack_signing_secret:
        web_application.middlewares.append(signed_only(services.settings.slack_signing_secret))

    async def metrics(request: web.Request) -> web.Response:
        await services.metrics.refresh_from_database(services.registry)
        return web.Response(body=services.metrics.render(), content_type="text/plain", charset="utf-8")

    web_application.router.add_get("/healthz", healthz(database_check(services.index.db)))
    web_application.router.add_get("/metrics", metrics)
    return web_application


def paced(acks: AcksFirst) -> Middleware:
    """Count the Slack requests being handled, so that answering waits for a burst's acks (bot.pacing)."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != EVENTS_PATH:  # /healthz, /metrics: nobody waits on them for an ack
            return await handler(request)
        with acks.handling():
            return await handler(request)

    return count


def signed_only(signing_secret: str) -> Middleware:
    """Refuse unsigned requests to the events endpoint before anything parses them: Bolt parses the body
    first and checks the signature after, so a malformed unsigned body got a 500 and a traceback."""
    verifier = SignatureVerifier(signing_secret)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == EVENTS_PATH:
            try:
                valid = verifier.is_valid_request(await request.read(), dict(request.headers))
            except ValueError:  # a timestamp that is no number, a body that is not UTF-8
                valid = False
            if not valid:
                return web.json_response({"error": "invalid request"}, status=401)
        return await handler(request)

    return check


def freeze_startup_objects() -> None:
    """What start-up loaded (libraries, settings, clients) lives as long as the process: moved out of the garbage
    collector's sight, a full collection pauses the event loop for about 1 ms instead of 100 (200k objects)."""
    gc.collect()
    gc.freeze()


async def serve(app: AsyncApp, services: BotServices, port: int) -> None:
    """Serve until cancelled. With an app token: Socket Mode (HTTP only for /healthz)."""
    embedder = services.index.embedder
    backend = await asyncio.to_thread(lambda: embedder.active_backend)  # loaded (exported) before the 1st question
    log.info("embedding model %s ready (%s)", embedder.model_name, backend)
    freeze_startup_objects()
    socket_mode = services.settings.slack_app_token is not None
    runner = web.AppRunner(web_app(services, None if socket_mode else app))
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    log.info("listening on :%d (%s)", port, "Socket Mode" if socket_mode else f"Events API at {EVENTS_PATH}")
    handler = AsyncSocketModeHandler(app, services.settings.slack_app_token) if socket_mode else None
    try:
        if handler is not None:
            await handler.connect_async()
        await asyncio.Event().wait()
    finally:
        if handler is not None:
            await handler.close_async()
        await runner.cleanup()

"""`wikibot up`: the main job on one machine, on embedded defaults, doing whatever the configuration allows.

It says what is missing (Slack tokens, a language model) and how to get it, instead of refusing to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from bot.app import build_app
from bot.llm import NO_LLM, check_llm
from bot.server import serve, web_app
from bot.services import BotServices
from core.config import NO_API_KEY, Settings
from core.db import redact
from core.vllm_server import serve_vllm
from retrieval.sample import SAMPLE_WIKI, ingest_sample_wiki
from training.default_model import DISPLAY_NAME, DefaultModelUnavailable, prepare_default_model

log = logging.getLogger(__name__)

DEMO_MODEL = (
    f"LLM: no WIKIBOT_BASE_MODEL or WIKIBOT_LLM_BASE_URL set: using the demonstration model {DISPLAY_NAME}. It "
    "shows the whole loop on a laptop, but its answers are a toy's: for real use set WIKIBOT_BASE_MODEL to an "
    "instruction-tuned model on a GPU (e.g. Qwen/Qwen2.5-7B-Instruct or meta-llama/Llama-3.1-8B-Instruct on one "
    "24-80 GB GPU), or WIKIBOT_LLM_BASE_URL to vLLM servers you run."
)
# the demonstration model's KV cache: about 23k tokens in float32, enough for several answers at once
DEMO_VLLM_ARGS = ("--kv-cache-memory-bytes", "1G")
NO_SLACK = (
    "Slack: not configured. Set WIKIBOT_SLACK_BOT_TOKEN and WIKIBOT_SLACK_SIGNING_SECRET (HTTP mode) or "
    "WIKIBOT_SLACK_APP_TOKEN (Socket Mode); deploy/slack/README.md shows how to create the app and get them. "
    "Meanwhile: `wikibot ask \"...\"` answers here."
)


def say(message: str) -> None:
    print(f"wikibot up: {message}", flush=True)


async def demo_model(settings: Settings) -> Settings:
    """With no LLM configured, the default model, prepared on first use; unchanged if it cannot be."""
    say(DEMO_MODEL)
    try:
        path = await asyncio.to_thread(prepare_default_model, settings.data_dir)
    except DefaultModelUnavailable as exc:
        say(f"LLM: the demonstration model is not available: {exc}")
        return settings
    extra = settings.vllm_extra_args or list(DEMO_VLLM_ARGS)
    return settings.model_copy(update={"base_model": str(path), "vllm_extra_args": extra})


async def up(settings: Settings, port: int) -> int:
    async with contextlib.AsyncExitStack() as stack:
        if settings.llm_base_url is None and settings.base_model is None:
            settings = await demo_model(settings)
        if settings.llm_base_url is None and settings.base_model:
            say(f"starting vLLM for {settings.base_model} on port {settings.vllm_port} (this takes a while)...")
            url = await asyncio.to_thread(
                stack.enter_context,
                serve_vllm(
                    settings.base_model,
                    settings.llm_model,
                    log_path=settings.data_dir / "vllm.log",
                    port=settings.vllm_port,
                    max_lora_rank=settings.vllm_max_lora_rank,
                    max_loras=settings.vllm_max_loras,
                    dtype=settings.vllm_dtype,
                    lora_target_modules=settings.lora_target_modules,
                    extra_args=settings.vllm_extra_args,
                    api_key=settings.llm_api_key if settings.llm_api_key != NO_API_KEY else None,
                ),
            )
            settings = settings.model_copy(update={"llm_base_url": url})
        services = await stack.enter_async_context(BotServices.open(settings))
        say(f"database: {redact(services.index.db.url)}")
        counts = await services.index.store.counts()
        if counts["pages"] == 0:
            say(f"no wiki indexed yet: ingesting the sample wiki ({SAMPLE_WIKI}); use `wikibot ingest` for yours")
            for report in await ingest_sample_wiki(services.index, progress=True):
                say(report.summary())
        else:
            say(f"wiki index: {counts['pages']} pages, {counts['chunks']} chunks")

        say(await check_llm(settings))

        if settings.base_model:
            from training.schedule import build_scheduler, catch_up  # imports torch and TRL: only when training is on

            scheduler = build_scheduler(settings, services.index.db)
            scheduler.start()
            stack.callback(scheduler.shutdown, wait=False)
            await catch_up(scheduler, services.index.db)
            say(f"training: scheduled '{settings.train_schedule}' on {settings.base_model}; `wikibot train --now` "
                "runs one cycle now")
        else:
            say("training: off. Set WIKIBOT_BASE_MODEL (the model vLLM serves) to learn from feedback.")

        if settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token):
            say(f"Slack bot: serving on port {port}")
            await serve(build_app(services), services, port)
            return 0
        say(NO_SLACK)
        runner = web.AppRunner(web_app(services))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "0.0.0.0", port).start()
        say(f"health and metrics on http://localhost:{port}/healthz and /metrics; stop with Ctrl-C")
        await asyncio.Event().wait()
    return 0

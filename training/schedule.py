"""The training schedule: APScheduler with its jobs stored in wikibot's PostgreSQL.

Two jobs, each under a fixed id (re-registered on every start, so a changed WIKIBOT_TRAIN_SCHEDULE applies):
- `wikibot-train` on `WIKIBOT_TRAIN_SCHEDULE` (cron): one training cycle, then `reconcile`. Several scheduler
  processes may run it; the cycle's advisory lock lets only one train.
- `wikibot-reconcile` every minute: put the active adapter back on a restarted vLLM, unload stale ones.

Stored jobs name a function, not an object: each run reads its settings from the environment of the process
that runs the scheduler (the one configuration source) and opens its own database pool.
"""

from __future__ import annotations

import asyncio
import logging
import re

import psycopg
from aiohttp import web
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import URL

from core.config import Settings
from core.db import Database
from training.config import TrainingConfig
from training.cycle import run_cycle
from training.default_model import with_default_model
from training.swap import reconcile, vllm_servers

log = logging.getLogger(__name__)

TRAIN_JOB = "wikibot-train"
RECONCILE_JOB = "wikibot-reconcile"
RECONCILE_SECONDS = 60
MISFIRE_GRACE_SECONDS = 3600  # a run missed while no scheduler was up still starts within an hour
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 (and 7) is Sunday


def crontab_trigger(expr: str) -> CronTrigger:
    """A trigger for a standard crontab expression. APScheduler 3 numbers weekdays from Monday = 0 (crontab:
    Sunday = 0 or 7), so numeric weekdays are rewritten as names first."""
    fields = expr.split()
    if len(fields) == 5:
        fields[4] = ",".join(_weekday_names(part) for part in fields[4].split(","))
    return CronTrigger.from_crontab(" ".join(fields))


def _weekday_names(part: str) -> str:
    match = re.fullmatch(r"(\*|(\d)(?:-(\d))?)(?:/(\d+))?", part)
    if match is None:  # names ("mon-fri"), or an error APScheduler reports
        return part
    star, first, last, step = match.groups()
    if star == "*" and step is None:
        return "*"
    low, high = (0, 6) if star == "*" else (int(first), int(last or first))
    return ",".join(_WEEKDAYS[day % 7] for day in range(low, high + 1, int(step or 1)))


def sqlalchemy_url(database_url: str) -> URL:
    """A psycopg (v3) SQLAlchemy URL for a PostgreSQL URL or key=value string, unix sockets included."""
    return URL.create("postgresql+psycopg", query=psycopg.conninfo.conninfo_to_dict(database_url))


async def training_job() -> None:
    settings = with_default_model(Settings())
    async with Database.open(settings) as db:
        report = await run_cycle(settings, db)
        log.info("scheduled training: %s", report.summary())
        await reconcile(settings, db)


async def reconcile_job() -> None:
    settings = with_default_model(Settings())
    async with Database.open(settings) as db:
        await reconcile(settings, db)


def build_scheduler(settings: Settings, db: Database) -> AsyncIOScheduler:
    """A scheduler (not started) with both jobs in PostgreSQL (`db`); `settings` are checked here, and each
    job run reads them again from the environment."""
    if settings.base_model is None:
        raise ValueError("training is off: set WIKIBOT_BASE_MODEL to the model vLLM serves")
    vllm_servers(settings)  # none configured: fail now, not every minute
    TrainingConfig.from_settings(settings)  # an adapter vLLM would refuse: fail now, not at the first run
    trigger = crontab_trigger(settings.train_schedule)  # a bad expression fails here, with its reason
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=sqlalchemy_url(db.url))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )
    scheduler.add_job(training_job, trigger, id=TRAIN_JOB, name="train, gate and swap an adapter",
                      replace_existing=True)  # fmt: skip
    scheduler.add_job(reconcile_job, IntervalTrigger(seconds=RECONCILE_SECONDS), id=RECONCILE_JOB,
                      name="reload the active adapter where vLLM lost it", replace_existing=True)  # fmt: skip
    return scheduler


def health_app(scheduler: AsyncIOScheduler, db: Database) -> web.Application:
    """/healthz of the scheduler process: 200 while the scheduler runs and the database answers."""

    async def healthz(request: web.Request) -> web.Response:
        if (problem := await db.problem()) is not None:
            return web.json_response({"status": "unhealthy", "database": problem}, status=503)
        if not scheduler.running:
            return web.json_response({"status": "unhealthy", "scheduler": "stopped"}, status=503)
        job = scheduler.get_job(TRAIN_JOB)
        next_run = job.next_run_time.isoformat() if job and job.next_run_time else None
        return web.json_response({"status": "ok", "next_training": next_run})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app


async def run_scheduler(settings: Settings, db: Database, port: int) -> None:
    """Run the jobs, with /healthz on `port`, until cancelled (Ctrl-C)."""
    scheduler = build_scheduler(settings, db)
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("scheduled %s: next run at %s", job.id, job.next_run_time)
    runner = web.AppRunner(health_app(scheduler, db))
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        scheduler.shutdown(wait=False)

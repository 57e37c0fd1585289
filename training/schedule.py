"""The training schedule: APScheduler running two jobs with the settings and database of its process.

- `wikibot-train` on `WIKIBOT_TRAIN_SCHEDULE` (cron): one training cycle, then `reconcile`. Several scheduler
  processes may run it; the cycle's advisory lock lets only one train.
- `wikibot-reconcile` every minute: put the active adapter back on a restarted vLLM, unload stale ones.
- `wikibot-labels` every LABELS_SECONDS: rebuild what search learns from accepted corrections (training/labels.py).

The jobs live in memory, bound to the settings they were built with (a job store in the database would pickle
them, secrets included). What a stored job gave, a run missed while no scheduler was up, `catch_up` gives: at
start, a scheduled time of the last MISFIRE_GRACE_SECONDS that no training run followed runs now.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.config import Settings
from core.db import Database
from core.health import database_check, healthz
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from training.config import TrainingConfig
from training.cycle import run_cycle
from training.datasets import latest_snapshot
from training.labels import refresh_labels
from training.swap import AdapterSwap

log = logging.getLogger(__name__)

TRAIN_JOB = "wikibot-train"
RECONCILE_JOB = "wikibot-reconcile"
RECONCILE_SECONDS = 60
LABELS_JOB = "wikibot-labels"
LABELS_SECONDS = 300
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


class Jobs:
    """What the scheduler runs, with the settings and database it was built with."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.swap = AdapterSwap.from_settings(settings, db)  # none configured: fails here, not every minute
        self.embedder = Embedder.from_settings(settings)  # loaded at the first refresh, kept for the next

    async def train(self) -> None:
        report = await run_cycle(self.settings, self.db)
        log.info("scheduled training: %s", report.summary())
        await self.swap.reconcile()

    async def reconcile(self) -> None:
        await self.swap.reconcile()

    async def labels(self) -> None:
        async with WikiIndex.open(self.settings, db=self.db, embedder=self.embedder) as index:
            refreshed = await refresh_labels(index)
        log.debug("search labels: %d from %d accepted corrections", refreshed.labels, refreshed.corrections)


def missed_run(trigger: CronTrigger, last_run: datetime | None, now: datetime) -> datetime | None:
    """The scheduled time of the last MISFIRE_GRACE_SECONDS before `now` that no run followed (`last_run`: when
    the latest began), if there is one."""
    since = now - timedelta(seconds=MISFIRE_GRACE_SECONDS)
    if last_run is not None and last_run > since:
        since = last_run
    due = trigger.get_next_fire_time(None, since)
    return due if due is not None and due <= now else None


async def catch_up(scheduler: AsyncIOScheduler, db: Database) -> datetime | None:
    """Run the training job now if a run the schedule had due in the last MISFIRE_GRACE_SECONDS did not happen
    (no scheduler was up then); return when it was due. Each run starts with a dataset snapshot, so the newest
    snapshot tells when the last one ran (a `wikibot pairs build` since counts as one)."""
    job = scheduler.get_job(TRAIN_JOB)
    latest = await latest_snapshot(db)
    now = datetime.now(job.trigger.timezone)
    due = missed_run(job.trigger, latest.created_at if latest else None, now)
    if due is not None:
        log.info("the training run due at %s did not happen (no scheduler was up): it runs now", due)
        job.modify(next_run_time=now)
    return due


def build_scheduler(settings: Settings, db: Database) -> AsyncIOScheduler:
    """A scheduler (not started) whose jobs run with `settings` on `db`; the settings are checked here."""
    if settings.base_model is None:
        raise ValueError("training is off: set WIKIBOT_BASE_MODEL to the model vLLM serves")
    TrainingConfig.from_settings(settings)  # an adapter vLLM would refuse: fail now, not at the first run
    trigger = crontab_trigger(settings.train_schedule)  # a bad expression fails here, with its reason
    jobs = Jobs(settings, db)
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}
    )
    scheduler.add_job(jobs.train, trigger, id=TRAIN_JOB, name="train, gate and swap an adapter")
    scheduler.add_job(jobs.reconcile, IntervalTrigger(seconds=RECONCILE_SECONDS), id=RECONCILE_JOB,
                      name="reload the active adapter where vLLM lost it")  # fmt: skip
    scheduler.add_job(jobs.labels, IntervalTrigger(seconds=LABELS_SECONDS), id=LABELS_JOB, next_run_time=datetime.now(),
                      name="rebuild what search learns from accepted corrections")  # fmt: skip
    return scheduler


def health_app(scheduler: AsyncIOScheduler, db: Database) -> web.Application:
    """/healthz of the scheduler process: 200 while the scheduler runs and the database answers."""

    async def running() -> dict[str, str]:
        return {} if scheduler.running else {"scheduler": "stopped"}

    def next_training() -> dict[str, str | None]:
        job = scheduler.get_job(TRAIN_JOB)
        return {"next_training": job.next_run_time.isoformat() if job and job.next_run_time else None}

    app = web.Application()
    app.router.add_get("/healthz", healthz(database_check(db), running, details=next_training))
    return app


async def run_scheduler(settings: Settings, db: Database, port: int) -> None:
    """Run the jobs, with /healthz on `port`, until cancelled (Ctrl-C)."""
    scheduler = build_scheduler(settings, db)
    scheduler.start()
    await catch_up(scheduler, db)
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

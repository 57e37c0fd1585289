"""The training schedule's jobs, run against the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.config import Settings
from core.db import Database
from training.datasets import build_snapshot
from training.schedule import LABELS_JOB, LABELS_SECONDS, RECONCILE_JOB, TRAIN_JOB, build_scheduler, catch_up


@pytest.fixture(scope="module")
def scheduled_settings(settings: Settings) -> Settings:
    # a vLLM URL nothing listens on: the jobs must cope (reconcile logs and carries on)
    return settings.model_copy(
        update={"base_model": "unused-here", "llm_base_url": "http://127.0.0.1:9/v1", "train_schedule": "30 2 * * 1"}
    )


@pytest.fixture
async def db(scheduled_settings: Settings) -> AsyncIterator[Database]:
    async with Database.open(scheduled_settings) as opened:
        yield opened


async def test_the_jobs_run_on_the_cron_schedule_and_every_minute(db: Database, scheduled_settings: Settings):
    started = datetime.now().astimezone()
    scheduler = build_scheduler(scheduled_settings, db)
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {TRAIN_JOB, RECONCILE_JOB, LABELS_JOB}
    train = jobs[TRAIN_JOB]
    assert isinstance(train.trigger, CronTrigger)
    fields = {f.name: str(f) for f in train.trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day_of_week"]) == ("30", "2", "mon")
    assert train.next_run_time.weekday() == 0 and (train.next_run_time.hour, train.next_run_time.minute) == (2, 30)
    assert (train.coalesce, train.max_instances, train.misfire_grace_time) == (True, 1, 3600)
    assert isinstance(jobs[RECONCILE_JOB].trigger, IntervalTrigger)
    labels = jobs[LABELS_JOB]  # search learns from corrections minutes after they are accepted, from the start
    assert labels.trigger.interval == timedelta(seconds=LABELS_SECONDS)
    assert labels.next_run_time - started < timedelta(seconds=5)


async def test_the_jobs_run_a_cycle_and_reconcile_with_the_settings_they_were_built_with(
    db: Database, scheduled_settings: Settings
):
    # the environment holds no WIKIBOT_* setting (tests/conftest.py): the jobs have only what they were given
    async with db.connection() as conn:
        (before,) = await (await conn.execute("SELECT count(*) FROM datasets")).fetchone()  # type: ignore[misc]
    scheduler = build_scheduler(scheduled_settings, db)
    scheduler.start(paused=True)
    try:
        for job in scheduler.get_jobs():
            await job.func()  # nothing to train on or learn from, no vLLM reachable: all finish without raising
    finally:
        scheduler.shutdown(wait=False)
    async with db.connection() as conn:
        (after,) = await (await conn.execute("SELECT count(*) FROM datasets")).fetchone()  # type: ignore[misc]
    assert after == before + 1, "the training job built a (too small) snapshot and skipped"


async def test_a_run_missed_while_no_scheduler_was_up_runs_at_start(db: Database, scheduled_settings: Settings):
    await build_snapshot(db, heldout_fraction=0.2)  # the last run, now
    now = datetime.now().astimezone()
    in_a_while, a_while_ago = now + timedelta(minutes=30), now - timedelta(minutes=30)
    for when, missed in ((in_a_while, False), (a_while_ago, True)):
        schedule = f"{when.minute} {when.hour} * * *"
        scheduler = build_scheduler(scheduled_settings.model_copy(update={"train_schedule": schedule}), db)
        scheduler.start(paused=True)
        try:
            if missed:  # due 30 minutes ago, and the last run was before
                async with db.connection() as conn:
                    await conn.execute("UPDATE datasets SET created_at = %s WHERE id = (SELECT max(id) FROM datasets)",
                                       (now - timedelta(hours=2),))
            due = await catch_up(scheduler, db)
            next_run = scheduler.get_job(TRAIN_JOB).next_run_time
        finally:
            scheduler.shutdown(wait=False)
        if missed:
            assert due is not None and (due.hour, due.minute) == (when.hour, when.minute)
            assert next_run <= datetime.now().astimezone(), "it runs now"
        else:
            assert due is None and (next_run.hour, next_run.minute) == (when.hour, when.minute)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"base_model": None}, "training is off"),
        ({"llm_base_url": None, "vllm_urls": []}, "no vLLM server is configured"),
        ({"train_schedule": "61 * * * *"}, "61"),
        ({"lora_rank": 32, "vllm_max_lora_rank": 16}, "WIKIBOT_LORA_RANK=32 exceeds"),  # not at the first run
    ],
)
async def test_bad_configuration_fails_at_start(db: Database, scheduled_settings: Settings, update: dict, message: str):
    with pytest.raises(ValueError, match=message):
        build_scheduler(scheduled_settings.model_copy(update=update), db)


async def test_scheduler_health_endpoint(db: Database, scheduled_settings: Settings):
    from aiohttp.test_utils import TestClient, TestServer

    from training.schedule import health_app

    scheduler = build_scheduler(scheduled_settings, db)
    scheduler.start(paused=True)
    async with TestClient(TestServer(health_app(scheduler, db))) as client:
        response = await client.get("/healthz")
        body = await response.json()
        assert response.status == 200 and body["status"] == "ok" and body["next_training"]
        scheduler.shutdown(wait=False)
        response = await client.get("/healthz")
        assert response.status == 503 and (await response.json())["scheduler"] == "stopped"

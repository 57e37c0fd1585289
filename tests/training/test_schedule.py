"""The training schedule's jobs, stored in the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.config import Settings
from core.db import Database
from training.schedule import RECONCILE_JOB, TRAIN_JOB, build_scheduler, sqlalchemy_url


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


def stored_jobs(db: Database) -> dict:
    store = SQLAlchemyJobStore(url=sqlalchemy_url(db.url))
    store.start(None, "check")  # type: ignore[arg-type]  # only lookups: no scheduler needed
    try:
        return {job.id: job for job in store.get_all_jobs()}
    finally:
        store.shutdown()


async def test_jobs_are_stored_in_postgresql_with_the_cron_trigger(db: Database, scheduled_settings: Settings):
    scheduler = build_scheduler(scheduled_settings, db)
    scheduler.start(paused=True)
    scheduler.shutdown(wait=False)

    jobs = stored_jobs(db)
    assert set(jobs) == {TRAIN_JOB, RECONCILE_JOB}
    train = jobs[TRAIN_JOB]
    assert isinstance(train.trigger, CronTrigger)
    fields = {f.name: str(f) for f in train.trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day_of_week"]) == ("30", "2", "mon")
    assert train.next_run_time.weekday() == 0 and (train.next_run_time.hour, train.next_run_time.minute) == (2, 30)
    assert (train.coalesce, train.max_instances, train.misfire_grace_time) == (True, 1, 3600)
    assert isinstance(jobs[RECONCILE_JOB].trigger, IntervalTrigger)


async def test_a_restart_replaces_the_jobs_with_the_new_schedule(db: Database, scheduled_settings: Settings):
    for schedule in ("0 3 * * *", "15 4 * * *"):
        scheduler = build_scheduler(scheduled_settings.model_copy(update={"train_schedule": schedule}), db)
        scheduler.start(paused=True)
        scheduler.shutdown(wait=False)
    jobs = stored_jobs(db)
    assert len(jobs) == 2
    assert jobs[TRAIN_JOB].next_run_time.strftime("%H:%M") == "04:15"


async def test_stored_jobs_run_a_cycle_and_reconcile(
    db: Database, scheduled_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    # a job run reads its settings from the scheduler process's environment
    for name in ("database_url", "base_model", "llm_base_url", "data_dir"):
        monkeypatch.setenv(f"WIKIBOT_{name.upper()}", str(getattr(scheduled_settings, name)))
    scheduler = build_scheduler(scheduled_settings, db)
    scheduler.start(paused=True)
    try:
        for job in scheduler.get_jobs():
            await job.func()  # nothing to train on, no vLLM reachable: both finish without raising
    finally:
        scheduler.shutdown(wait=False)
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM datasets")
        (snapshots,) = await cur.fetchone()  # type: ignore[misc]
    assert snapshots == 1, "the training job built a (too small) snapshot and skipped"


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

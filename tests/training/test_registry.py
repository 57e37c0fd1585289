"""The adapter registry against a real PostgreSQL: versions, statuses, promote and rollback transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from core.config import Settings
from core.db import Database
from core.registry import AdapterRegistry, RegistryError, training_lock


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[AdapterRegistry]:
    async with Database.open(settings) as db:
        async with db.connection() as conn:
            await conn.execute("DELETE FROM adapters")
        yield AdapterRegistry(db)


async def trained(registry: AdapterRegistry, settings: Settings, dataset_id: int | None = None) -> int:
    adapter = await registry.create(settings.adapters_dir, dataset_id)
    await registry.set_candidate(adapter.version, {"heldout": {"accuracy": 1.0, "mean_margin": 2.0, "n": 4}})
    return adapter.version


async def test_versions_names_paths_and_parents(registry: AdapterRegistry, settings: Settings):
    assert await registry.next_version() == 1
    first = await registry.create(settings.adapters_dir, dataset_id=7)
    assert (first.version, first.name, first.status, first.parent_id) == (1, "wiki-v1", "training", None)
    assert first.path == str(settings.adapters_dir.resolve() / "wiki-v1") and first.dataset_id == 7
    await registry.set_candidate(1, {"train": {"steps": 3}})
    await registry.promote(1)
    second = await registry.create(settings.adapters_dir, dataset_id=8)
    assert (second.version, second.parent_id) == (2, first.id), "the active adapter is the parent"
    assert await registry.next_version() == 3


async def test_concurrent_creates_get_distinct_versions(registry: AdapterRegistry, settings: Settings):
    created = await asyncio.gather(*(registry.create(settings.adapters_dir, None) for _ in range(5)))
    assert sorted(a.version for a in created) == [1, 2, 3, 4, 5]


async def test_promote_retires_the_previous_active_in_one_step(registry: AdapterRegistry, settings: Settings):
    v1, v2 = await trained(registry, settings), await trained(registry, settings)
    assert await registry.promote(v1) is None
    retired = await registry.promote(v2)
    assert retired is not None and retired.version == v1
    statuses = {a.version: a.status for a in await registry.list()}
    assert statuses == {v1: "retired", v2: "active"}
    active = await registry.active()
    assert active is not None and active.version == v2 and active.activated_at is not None
    assert (await registry.get(v1)).retired_at is not None


async def test_only_finished_adapters_can_be_promoted(registry: AdapterRegistry, settings: Settings):
    v1 = await trained(registry, settings)
    await registry.promote(v1)
    training = await registry.create(settings.adapters_dir, None)
    with pytest.raises(RegistryError, match="cannot be promoted \\(training"):
        await registry.promote(training.version)
    await registry.set_failed(training.version, "boom")
    with pytest.raises(RegistryError, match="failed"):
        await registry.promote(training.version)
    with pytest.raises(RegistryError, match="no such version"):
        await registry.promote(99)
    assert (await registry.active()).version == v1  # type: ignore[union-attr]


async def test_outcomes_keep_metrics_and_reason(registry: AdapterRegistry, settings: Settings):
    adapter = await registry.create(settings.adapters_dir, 3)
    await registry.set_rejected(adapter.version, {"gate": "below the gate: ..."}, "below the gate: ...")
    rejected = await registry.get(adapter.version)
    assert rejected.status == "rejected" and rejected.error == "below the gate: ..."
    assert rejected.metrics == {"gate": "below the gate: ..."}
    with pytest.raises(RegistryError, match="not in training or a candidate"):
        await registry.set_failed(adapter.version, "too late")


async def test_rollback_goes_to_the_parent_then_to_the_base(registry: AdapterRegistry, settings: Settings):
    v1 = await trained(registry, settings)
    await registry.promote(v1)
    v2 = await trained(registry, settings)  # parent v1
    await registry.promote(v2)
    v3 = await trained(registry, settings)  # parent v2
    await registry.promote(v3)

    assert (await registry.rollback_target()).version == v2  # type: ignore[union-attr]
    retired, activated = await registry.rollback(v2)
    assert (retired.version, activated.version) == (v3, v2)  # type: ignore[union-attr]
    retired, activated = await registry.rollback(v1)
    assert (retired.version, activated.version) == (v2, v1)  # type: ignore[union-attr]
    assert await registry.rollback_target() is None, "v1 had no parent and nothing older: the base model"
    retired, activated = await registry.rollback(None)
    assert retired.version == v1 and activated is None
    assert await registry.active() is None
    with pytest.raises(RegistryError, match="nothing to roll back"):
        await registry.rollback(None)


async def test_rollback_refuses_a_changed_registry(registry: AdapterRegistry, settings: Settings):
    v1 = await trained(registry, settings)
    await registry.promote(v1)
    v2 = await trained(registry, settings)
    await registry.promote(v2)
    with pytest.raises(RegistryError, match="changed"):
        await registry.rollback(None)  # the caller expected the base model, but v1 would be activated
    assert (await registry.active()).version == v2  # type: ignore[union-attr]


async def test_one_active_adapter_at_most(registry: AdapterRegistry, settings: Settings):
    v1, v2 = await trained(registry, settings), await trained(registry, settings)
    await registry.promote(v1)
    async with registry.db.connection() as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            await conn.execute("UPDATE adapters SET status = 'active' WHERE version = %s", (v2,))


async def test_unloadable_waits_for_the_grace_period(registry: AdapterRegistry, settings: Settings):
    v1, v2 = await trained(registry, settings), await trained(registry, settings)
    await registry.promote(v1)
    await registry.promote(v2)
    failed = await registry.create(settings.adapters_dir, None)
    await registry.set_failed(failed.version, "boom")
    assert [a.version for a in await registry.unloadable(grace_seconds=3600)] == [failed.version]
    assert [a.version for a in await registry.unloadable(grace_seconds=0)] == [v1, failed.version]


async def test_training_lock_is_exclusive_across_sessions(registry: AdapterRegistry):
    async with training_lock(registry.db) as first:
        async with training_lock(registry.db) as second:
            assert (first, second) == (True, False)
    async with training_lock(registry.db) as again:
        assert again

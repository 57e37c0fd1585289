"""Every SQL statement of the adapter registry (`adapters`, migration 0002) and the training run lock: training
writes it; the bot (the active adapter, App Home, metrics) and the dataset snapshots (which ones adapters were
trained on) read it here.

Statuses: 'training' (being trained) -> 'candidate' (trained, passed the gate, being swapped in) -> 'active'
(the one the bot serves; at most one) -> 'retired'. Or 'rejected' (below the gate) or 'failed' (an error, or
a run killed midway). The bot reads the 'active' row on every question.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from core.db import Database

TRAINING_LOCK = 72_650_201  # pg_advisory_lock key: one training run or adapter swap at a time, across processes
REGISTRY_LOCK = 72_650_202  # pg_advisory_xact_lock key: registry changes that read then write
NAME_PREFIX = "wiki-v"
PROMOTABLE = ("candidate", "retired", "rejected")

_COLUMNS = (
    "id, version, name, path, status, parent_id, dataset_id, metrics, error, created_at, activated_at, retired_at"
)
# What `rollback` activates: the active adapter's parent if it is retired, else the newest older retired one.
_ROLLBACK_TARGET = f"""
SELECT {_COLUMNS} FROM adapters t
WHERE t.status = 'retired' AND t.version < %(version)s
ORDER BY (t.id = %(parent_id)s) DESC, t.version DESC LIMIT 1
"""


class RegistryError(ValueError):
    """A registry change that does not apply (unknown version, wrong status); the CLI prints it."""


@dataclass(frozen=True)
class Adapter:
    id: int
    version: int
    name: str
    path: str
    status: str
    parent_id: int | None
    dataset_id: int | None
    metrics: dict[str, Any]
    error: str | None
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        times = ("created_at", "activated_at", "retired_at")
        return {k: (v.isoformat() if k in times and v else v) for k, v in self.__dict__.items()}


@asynccontextmanager
async def training_lock(db: Database) -> AsyncIterator[bool]:
    """Try to take the training lock on a connection of its own; yield whether it was taken.

    The lock is PostgreSQL's, held by the session: a killed process loses it with its connection, so whoever
    holds it knows that any run left in 'training' is dead.
    """
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (TRAINING_LOCK,))
        (taken,) = await cur.fetchone()  # type: ignore[misc]
        try:
            yield bool(taken)
        finally:
            if taken:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (TRAINING_LOCK,))


@dataclass(frozen=True)
class ServedAdapter:
    """What the bot needs of the active adapter on every question (not its metrics)."""

    id: int
    name: str
    version: int
    path: str


class AdapterRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _fetch(self, sql: str, params: dict[str, Any] | tuple = ()) -> list[Adapter]:
        async with self.db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Adapter))
            await cur.execute(sql, params)  # type: ignore[arg-type]
            return await cur.fetchall()

    async def list(self) -> list[Adapter]:
        return await self._fetch(f"SELECT {_COLUMNS} FROM adapters ORDER BY version")

    async def active(self) -> Adapter | None:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM adapters WHERE status = 'active'")
        return rows[0] if rows else None

    async def get(self, version: int) -> Adapter:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM adapters WHERE version = %s", (version,))
        if not rows:
            raise RegistryError(f"there is no adapter version {version}")
        return rows[0]

    async def with_status(self, *statuses: str) -> list[Adapter]:
        return await self._fetch(
            f"SELECT {_COLUMNS} FROM adapters WHERE status = ANY(%s) ORDER BY version", (list(statuses),)
        )

    async def next_version(self) -> int:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT coalesce(max(version), 0) + 1 FROM adapters")
            (version,) = await cur.fetchone()  # type: ignore[misc]
        return int(version)

    async def create(self, adapters_dir: Path, dataset_id: int | None) -> Adapter:
        """A new version in 'training', its directory `adapters_dir/wiki-v{N}`, its parent the active adapter."""
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK,))
            cur = conn.cursor(row_factory=class_row(Adapter))
            await cur.execute(
                f"""
                WITH v AS (SELECT coalesce(max(version), 0) + 1 AS version FROM adapters)
                INSERT INTO adapters (version, name, path, parent_id, dataset_id, status)
                SELECT v.version, %(prefix)s || v.version, %(dir)s || '/' || %(prefix)s || v.version,
                       (SELECT id FROM adapters WHERE status = 'active'), %(dataset_id)s, 'training'
                FROM v RETURNING {_COLUMNS}
                """,
                {"prefix": NAME_PREFIX, "dir": str(adapters_dir.resolve()), "dataset_id": dataset_id},
            )
            return await cur.fetchone()  # type: ignore[return-value]

    async def _set(self, version: int, status: str, metrics: dict[str, Any] | None, error: str | None) -> None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE adapters SET status = %s, metrics = metrics || %s, error = coalesce(%s, error)"
                " WHERE version = %s AND status IN ('training', 'candidate')",
                (status, Jsonb(metrics or {}), error, version),
            )
            if cur.rowcount != 1:
                raise RegistryError(f"adapter version {version} is not in training or a candidate")

    async def set_candidate(self, version: int, metrics: dict[str, Any]) -> None:
        await self._set(version, "candidate", metrics, None)

    async def set_rejected(self, version: int, metrics: dict[str, Any], reason: str) -> None:
        await self._set(version, "rejected", metrics, reason)

    async def set_failed(self, version: int, error: str, metrics: dict[str, Any] | None = None) -> None:
        await self._set(version, "failed", metrics, error)

    async def promote(self, version: int) -> Adapter | None:
        """In one transaction: the active adapter -> 'retired', this one -> 'active'. Return the one retired."""
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK,))
            cur = await conn.execute("SELECT status FROM adapters WHERE version = %s", (version,))
            row = await cur.fetchone()
            if row is None or row[0] not in PROMOTABLE:
                raise RegistryError(
                    f"adapter version {version} cannot be promoted ({row[0] if row else 'no such version'}; "
                    f"promotable: {', '.join(PROMOTABLE)})"
                )
            retired = await self._retire_active(conn)
            await conn.execute(
                "UPDATE adapters SET status = 'active', activated_at = now(), retired_at = NULL WHERE version = %s",
                (version,),
            )
        return retired

    async def rollback_target(self) -> Adapter | None:
        """What `rollback` would activate (None: the base model)."""
        active = await self.active()
        if active is None:
            raise RegistryError("no adapter is active: nothing to roll back")
        rows = await self._fetch(_ROLLBACK_TARGET, {"version": active.version, "parent_id": active.parent_id})
        return rows[0] if rows else None

    async def rollback(self, expected_target: int | None) -> tuple[Adapter, Adapter | None]:
        """In one transaction: the active adapter -> 'retired', its parent (or the newest older retired one)
        -> 'active', or none (the base model answers). `expected_target` is the version `rollback_target`
        gave (None for the base): if the registry changed since, nothing is done. Return (retired, activated)."""
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK,))
            cur = conn.cursor(row_factory=class_row(Adapter))
            await cur.execute(f"SELECT {_COLUMNS} FROM adapters WHERE status = 'active'")
            active = await cur.fetchone()
            if active is None:
                raise RegistryError("no adapter is active: nothing to roll back")
            await cur.execute(_ROLLBACK_TARGET, {"version": active.version, "parent_id": active.parent_id})
            target = await cur.fetchone()
            if (target.version if target else None) != expected_target:
                raise RegistryError("the adapter registry changed during the rollback; run it again")
            await self._retire_active(conn)
            if target is not None:
                await conn.execute(
                    "UPDATE adapters SET status = 'active', activated_at = now(), retired_at = NULL WHERE id = %s",
                    (target.id,),
                )
        return active, target

    @staticmethod
    async def _retire_active(conn: psycopg.AsyncConnection) -> Adapter | None:
        cur = conn.cursor(row_factory=class_row(Adapter))
        await cur.execute(
            f"UPDATE adapters SET status = 'retired', retired_at = now() WHERE status = 'active' RETURNING {_COLUMNS}"
        )
        return await cur.fetchone()

    async def unloadable(self, grace_seconds: float) -> list[Adapter]:
        """Adapters no request should use any more: retired more than `grace_seconds` ago, rejected, failed."""
        return await self._fetch(
            f"SELECT {_COLUMNS} FROM adapters WHERE status IN ('rejected', 'failed')"
            " OR (status = 'retired' AND retired_at < now() - make_interval(secs => %s)) ORDER BY version",
            (grace_seconds,),
        )

    async def serving(self) -> ServedAdapter | None:
        async with self.db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(ServedAdapter))
            await cur.execute("SELECT id, name, version, path FROM adapters WHERE status = 'active'")
            return await cur.fetchone()

    async def figures(self) -> list[dict[str, Any]]:
        """Each adapter's version, name, status and gate figures (held-out accuracy; the answer gate's right-source
        and echo rates, None where it did not run), oldest first: what App Home charts, without the metrics' bulk
        (canary references, example answers)."""
        async with self.db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT version, name, status, (metrics->'heldout'->>'accuracy')::float AS accuracy,"
                " (metrics->'answers'->>'cites_right')::float AS cites_right,"
                " (metrics->'answers'->>'echo')::float AS echo FROM adapters ORDER BY version"
            )
            return await cur.fetchall()

    async def status_counts(self) -> dict[str, int]:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT status, count(*) FROM adapters GROUP BY status")
            return dict(await cur.fetchall())  # type: ignore[arg-type]

    async def trained_dataset_ids(self) -> list[int]:
        """The dataset snapshots adapters were trained on, newest adapter's first."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT dataset_id FROM adapters WHERE dataset_id IS NOT NULL GROUP BY dataset_id"
                " ORDER BY max(version) DESC"
            )
            return [row[0] for row in await cur.fetchall()]

    async def trained_on(self, dataset_ids: list[int]) -> list[Adapter]:
        return await self._fetch(
            f"SELECT {_COLUMNS} FROM adapters WHERE dataset_id = ANY(%s) ORDER BY version", (dataset_ids,)
        )

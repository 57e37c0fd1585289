"""A database outage for one client only: it logs in as a role of its own, which can be locked out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql


class DatabaseOutage:
    def __init__(self, admin_url: str, database_url: str) -> None:
        self.admin_url = admin_url
        self.role = f"wikibot_outage_{uuid.uuid4().hex[:8]}"
        info = psycopg.conninfo.conninfo_to_dict(database_url) | {"user": self.role}
        info.pop("password", None)
        self.url = psycopg.conninfo.make_conninfo(**info)  # the client's database URL

    async def _admin(self, statement: str, end_sessions: bool = False) -> None:
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            await conn.execute(sql.SQL(statement).format(role=sql.Identifier(self.role)))  # type: ignore[arg-type]
            if end_sessions:
                await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                                   (self.role,))

    async def start(self) -> None:
        """End the client's sessions and refuse new ones, as when the server goes away."""
        await self._admin("ALTER ROLE {role} NOLOGIN", end_sessions=True)


@asynccontextmanager
async def database_outage(admin_url: str, database_url: str) -> AsyncIterator[DatabaseOutage]:
    """A superuser role on `database_url`'s database (created with `admin_url`), dropped afterwards."""
    outage = DatabaseOutage(admin_url, database_url)
    await outage._admin("CREATE ROLE {role} LOGIN SUPERUSER")
    try:
        yield outage
    finally:
        await outage._admin("DROP ROLE {role}")  # the client is closed by now

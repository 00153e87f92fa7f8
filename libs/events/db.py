"""Postgres connections and versioned, idempotent schema migrations."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""A connection as handlers see it: a plain one or one borrowed from the pool."""

MIGRATION_LOCK = 7_311_001
STORE_MIGRATIONS = Path(__file__).parent / "migrations"


async def _init_connection(conn: Conn) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


IDLE_IN_TRANSACTION_TIMEOUT_S = 60.0
"""Postgres ends a session of ours left idle inside a transaction this long: the read horizon is
server-wide, so a transaction forgotten open would hold back every reader of the log."""


def _server_settings(idle_in_transaction_timeout_s: float, application: str) -> dict[str, str]:
    return {
        "idle_in_transaction_session_timeout": str(int(idle_in_transaction_timeout_s * 1000)),
        # shown in pg_stat_activity: who holds a lock or the read horizon, at a glance
        "application_name": application[:63],
    }


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release. asyncpg's default reset is a round trip per release
    (unlock advisory locks, CLOSE ALL, UNLISTEN, RESET ALL): a quarter of a single append's
    time. Our pooled connections hold no session state: locks are transaction-scoped
    (`pg_advisory_xact_lock`, `SET LOCAL`), a session lock is taken only on a connection of its
    own (relay, replay) or released in a `finally` (migrations), and nothing LISTENs. asyncpg
    still rolls back a transaction left open before this runs."""


async def create_pool(
    url: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    idle_in_transaction_timeout_s: float = IDLE_IN_TRANSACTION_TIMEOUT_S,
    application: str = "opsledger",
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings=_server_settings(idle_in_transaction_timeout_s, application),
    )
    if pool is None:  # only when called without awaiting, which we never do
        raise RuntimeError("asyncpg returned no pool")
    return pool


async def connect(
    url: str,
    *,
    idle_in_transaction_timeout_s: float = IDLE_IN_TRANSACTION_TIMEOUT_S,
    application: str = "opsledger",
) -> asyncpg.Connection:
    conn = await asyncpg.connect(
        url, server_settings=_server_settings(idle_in_transaction_timeout_s, application)
    )
    await _init_connection(conn)
    return conn


@dataclass(frozen=True)
class Migration:
    owner: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_in(owner: str, folder: Path) -> list[Migration]:
    """The `NNNN_name.sql` files of a folder, in order."""
    return [
        Migration(owner=owner, name=path.name, sql=path.read_text())
        for path in sorted(folder.glob("*.sql"))
    ]


async def migrate(pool: asyncpg.Pool, migrations: list[Migration]) -> list[str]:
    """Apply what is not applied yet, under an advisory lock so racing replicas apply each once.

    A migration that was applied and has since been edited is refused: published schemas only grow.
    """
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                       owner text NOT NULL, name text NOT NULL, checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now(),
                       PRIMARY KEY (owner, name))"""
            )
            rows = await conn.fetch("SELECT owner, name, checksum FROM public.schema_migrations")
            done: dict[tuple[str, str], str] = {
                (r["owner"], r["name"]): r["checksum"] for r in rows
            }
            for migration in migrations:
                key = (migration.owner, migration.name)
                if key in done:
                    if done[key] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.owner}/{migration.name} changed after it was "
                            "applied; add a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO public.schema_migrations (owner, name, checksum) "
                        "VALUES ($1, $2, $3)",
                        migration.owner,
                        migration.name,
                        migration.checksum,
                    )
                log.info("applied migration %s/%s", migration.owner, migration.name)
                applied_now.append(f"{migration.owner}/{migration.name}")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now


def store_migrations() -> list[Migration]:
    return migrations_in("eventstore", STORE_MIGRATIONS)


Record = dict[str, Any]


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (works for host and socket URLs)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


_DATABASE_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` says the database connection or the server failed, not the statement: the
    server went away or is restarting, refused us, closed the connection under us, or rolled the
    transaction back to break a deadlock. Such a failure says nothing about the event being
    handled, so it is retried without counting an attempt."""
    if isinstance(exc, TimeoutError):  # an OSError, but a time limit of ours, not the server
        return False
    return isinstance(exc, OSError) or is_database_connection_error(exc)


def is_database_connection_error(exc: BaseException) -> bool:
    """Like `is_connection_error`, for what a handler raised: only the database connection's own
    failures count, since a handler's OSError (a file it cannot open, an endpoint refusing it)
    is the handler's failure and must be counted and, in the end, parked."""
    if isinstance(exc, _DATABASE_CONNECTION_ERRORS):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)

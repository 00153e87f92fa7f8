"""The read horizon: which transaction holds back the gap-safe reads, and for how long.

Readers of the global log take only rows below the oldest transaction still running on the
whole Postgres server (`pg_snapshot_xmin`), so one long transaction anywhere on that server (a
forgotten `BEGIN` in psql, a long migration, another application's batch job) delays every event
behind it. This module names that transaction from `pg_stat_activity`, for `/readyz`, the relay's
log and the `opsledger_read_horizon_lag_seconds` gauge.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from prometheus_client import Gauge

from libs.events.db import Conn

HORIZON_LAG = Gauge(
    "opsledger_read_horizon_lag_seconds",
    "Age of the oldest running transaction on the Postgres server, which holds back the relay",
)


@dataclass(frozen=True)
class HorizonHolder:
    """The oldest running transaction that holds a transaction id."""

    pid: int
    database: str | None
    state: str | None
    application: str | None
    age_s: float
    query: str | None

    def describe(self) -> str:
        return (
            f"backend {self.pid} (database {self.database}, {self.state}, "
            f"application {self.application or '-'}) has been in a transaction for "
            f"{self.age_s:.1f} s"
        )


async def horizon_holder(conn: Conn | asyncpg.Pool) -> HorizonHolder | None:
    """The transaction holding the read horizon, or None when none has run for long."""
    row = await conn.fetchrow(
        "SELECT pid, datname, state, application_name, "
        "extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age_s, "
        "left(query, 200) AS query FROM pg_stat_activity "
        "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() "
        "ORDER BY age(backend_xid) DESC LIMIT 1"
    )
    if row is None:
        return None
    return HorizonHolder(
        pid=row["pid"],
        database=row["datname"],
        state=row["state"],
        application=row["application_name"],
        age_s=max(0.0, float(row["age_s"] or 0.0)),
        query=row["query"],
    )

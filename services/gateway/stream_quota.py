"""How many live streams each user holds open, counted in Postgres (gateway.open_streams) so the
cap (OPSLEDGER_STREAMS_PER_USER) holds across every gateway replica. An open stream beats its
row's heartbeat; a row whose heartbeat stopped (its gateway was killed) stops counting once it
is `expiry_s` old and is deleted by the next opening."""

from __future__ import annotations

import math
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg

from libs.events.errors import ServiceError


def expiry_for(heartbeat_s: float) -> float:
    """How long an unbeaten row still counts: a few missed beats, never less than 15 s."""
    return max(15.0, 3 * heartbeat_s)


@dataclass(frozen=True)
class StreamQuota:
    pool: asyncpg.Pool
    per_user: int
    expiry_s: float

    async def open(self, user_id: str) -> UUID:
        """Count a new stream of `user_id`; 429 TOO_MANY_STREAMS (with Retry-After) at the cap."""
        stream_id = uuid4()
        await self._claim(user_id, stream_id)
        return stream_id

    async def _claim(self, user_id: str, stream_id: UUID) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # one opening per user at a time, on every replica, so two cannot both take the
            # last slot
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"open-streams:{user_id}"
            )
            await conn.execute(
                "DELETE FROM gateway.open_streams "
                "WHERE heartbeat_at < now() - make_interval(secs => $1)",
                self.expiry_s,
            )
            row = await conn.fetchrow(
                "SELECT count(*) AS open, extract(epoch FROM min(heartbeat_at) "
                "  + make_interval(secs => $2) - now())::float8 AS frees_in "
                "FROM gateway.open_streams WHERE user_id = $1",
                user_id,
                self.expiry_s,
            )
            if row is not None and row["open"] >= self.per_user:
                # the soonest a slot frees without a client closing one: when the stalest
                # stream would stop counting were its gateway gone
                retry_after = min(math.ceil(self.expiry_s), max(1, math.ceil(row["frees_in"])))
                raise ServiceError(
                    429,
                    "TOO_MANY_STREAMS",
                    f"you have {row['open']} live streams open, the most allowed; close one",
                    {"limit": self.per_user, "retry_after": retry_after},
                )
            await conn.execute(
                "INSERT INTO gateway.open_streams (stream_id, user_id) VALUES ($1, $2)",
                stream_id,
                user_id,
            )

    async def beat(self, stream_id: UUID, user_id: str) -> None:
        """Keep this stream counted. When its row is gone (it missed enough beats to expire —
        a stalled loop, a database failover — and an opening swept it), it takes a slot again
        through the same capped opening, or the stream must end (429 TOO_MANY_STREAMS): a
        stream never runs on uncounted."""
        beaten = await self.pool.execute(
            "UPDATE gateway.open_streams SET heartbeat_at = now() WHERE stream_id = $1", stream_id
        )
        if beaten == "UPDATE 0":
            await self._claim(user_id, stream_id)

    async def close(self, stream_id: UUID) -> None:
        await self.pool.execute("DELETE FROM gateway.open_streams WHERE stream_id = $1", stream_id)

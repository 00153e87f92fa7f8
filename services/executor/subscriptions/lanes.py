"""Claiming deliveries and recording what became of them, in `executor.deliveries`.

A lane is one endpoint and one stream. Only a lane's oldest open delivery (pending or
dead-lettered, by seq) may be claimed, so a stream's next event waits for the previous one's
success, and a dead letter holds its lane until a replay supersedes it. A claim is one short
statement (FOR UPDATE SKIP LOCKED: replicas never take the same delivery) that counts the
attempt and sets `next_at` to the end of the claim's lease: if the sender dies mid-POST, the
delivery becomes claimable again then, with the same delivery id. An outcome is recorded only
by the claim that made it (the row still pending at that attempt), so a late answer to a claim
that was taken over, or superseded by a replay, changes nothing."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import asyncpg

from services.executor.subscriptions.fanout import CHANNEL

_OPEN: Final = "('pending', 'dead_lettered')"
_IS_HEAD: Final = f"""NOT EXISTS (
    SELECT 1 FROM executor.deliveries e
    WHERE e.webhook_id = c.webhook_id AND e.stream_id = c.stream_id
      AND e.state IN {_OPEN} AND e.seq < c.seq)"""

_CLAIM: Final = f"""
UPDATE executor.deliveries d SET attempts = d.attempts + 1, sender = $2,
    next_at = clock_timestamp() + make_interval(secs => $1), updated_at = clock_timestamp()
WHERE d.seq = (
    SELECT c.seq FROM executor.deliveries c
    WHERE c.state = 'pending' AND c.next_at <= clock_timestamp() AND {_IS_HEAD}
      AND c.webhook_id <> ALL($3::text[])
    ORDER BY c.next_at, c.seq LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING d.seq, d.delivery_id, d.webhook_id, d.event_id, d.stream_id, d.version, d.type,
    d.attempts
"""

_NEXT_DUE: Final = f"""
SELECT extract(epoch FROM min(c.next_at) - clock_timestamp())::float8
FROM executor.deliveries c WHERE c.state = 'pending' AND {_IS_HEAD}
"""


@dataclass(frozen=True)
class Claim:
    """One attempt at one delivery, leased to one sender."""

    seq: int
    delivery_id: UUID
    webhook_id: str
    event_id: UUID
    stream_id: str
    version: int
    type: str
    attempts: int
    """This attempt's number (1 for the first)."""


@dataclass(frozen=True)
class Delivered:
    status: int


@dataclass(frozen=True)
class Failed:
    error: str
    status: int | None = None
    permanent: bool = False
    """Dead-letter at once: no attempt could succeed (a target the outbound policy refuses)."""


@dataclass(frozen=True)
class Cancelled:
    reason: str


Outcome = Delivered | Failed | Cancelled


@dataclass(frozen=True)
class Backoff:
    """How many attempts a delivery gets, and how long to wait between them."""

    max_attempts: int
    base_s: float
    cap_s: float

    def delay(self, attempts: int) -> float:
        """Before attempt `attempts + 1`: uniform in [c/2, c], c = min(cap, base * 2**(n-1))
        (half jitter: a flapping receiver is not hammered at once, nor all lanes in step)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(attempts - 1, 60))
        return random.uniform(ceiling / 2, ceiling)


async def claim_next(
    pool: asyncpg.Pool, *, sender: str, lease_s: float, busy: Sequence[str] = ()
) -> Claim | None:
    """The due head of some lane of an endpoint not in `busy`, claimed for `lease_s`; None
    when no such lane has one."""
    row = await pool.fetchrow(_CLAIM, lease_s, sender, list(busy))
    return Claim(**dict(row)) if row is not None else None


async def next_due_in(pool: asyncpg.Pool) -> float | None:
    """Seconds until the next lane head is due (negative: one is due now; None: none waits)."""
    value = await pool.fetchval(_NEXT_DUE)
    return None if value is None else float(value)


async def record(pool: asyncpg.Pool, claim: Claim, outcome: Outcome, backoff: Backoff) -> bool:
    """Record `outcome` of `claim`; False when the claim no longer held the delivery. A
    delivery that left its lane NOTIFYs CHANNEL, so any replica's sender takes the next."""
    if isinstance(outcome, Delivered):
        sql = (
            "state = 'delivered', delivered_at = clock_timestamp(), last_status = $3, "
            "last_error = NULL"
        )
        args: tuple[object, ...] = (outcome.status,)
    elif isinstance(outcome, Cancelled):
        sql, args = "state = 'cancelled', last_error = $3", (outcome.reason,)
    elif outcome.permanent or claim.attempts >= backoff.max_attempts:
        sql = "state = 'dead_lettered', last_status = $3, last_error = $4"
        args = (outcome.status, outcome.error)
    else:
        sql = (
            "next_at = clock_timestamp() + make_interval(secs => $5), last_status = $3, "
            "last_error = $4"
        )
        args = (outcome.status, outcome.error, backoff.delay(claim.attempts))
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.execute(
            f"UPDATE executor.deliveries SET {sql}, updated_at = clock_timestamp() "
            "WHERE seq = $1 AND state = 'pending' AND attempts = $2",
            claim.seq,
            claim.attempts,
            *args,
        )
        held = status == "UPDATE 1"
        if held and not isinstance(outcome, Failed):
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, claim.webhook_id)
    return held

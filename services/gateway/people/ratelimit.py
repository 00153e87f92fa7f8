"""Fixed-window rate limits with counters in Postgres, so a limit holds across gateway replicas."""

from __future__ import annotations

import random
from dataclasses import dataclass

import asyncpg

from libs.events.errors import ServiceError

# The window is computed from the database's clock, so every replica agrees where it starts.
_WINDOW = "to_timestamp(floor(extract(epoch FROM now()) / $2::int) * $2::int)"

_HIT = f"""
INSERT INTO gateway.rate_limits AS r (key, window_start, hits) VALUES ($1, {_WINDOW}, 1)
ON CONFLICT (key, window_start) DO UPDATE SET hits = r.hits + 1
RETURNING hits,
    ceil(extract(epoch FROM r.window_start + make_interval(secs => $2::int) - now()))::int
        AS retry_after
"""
_REFUND = f"""
UPDATE gateway.rate_limits SET hits = greatest(hits - 1, 0)
WHERE key = $1 AND window_start = {_WINDOW}
"""
_FORGET_OLD = "DELETE FROM gateway.rate_limits WHERE window_start < now() - interval '1 day'"


@dataclass(frozen=True)
class Limit:
    """At most `hits` per `window_s` seconds for one subject (an IP, an account)."""

    name: str
    hits: int
    window_s: int


@dataclass(frozen=True)
class RateLimits:
    """The gateway's limits; `app.state.rate_limits` may replace the defaults."""

    register_per_ip: Limit = Limit("register-ip", 10, 60)
    register_per_email: Limit = Limit("register-email", 5, 3600)
    login_per_ip: Limit = Limit("login-ip", 10, 60)
    login_failures_per_account: Limit = Limit("login-failed", 5, 900)


DEFAULT_LIMITS = RateLimits()


def rate_limited(retry_after: int) -> ServiceError:
    return ServiceError(
        429,
        "RATE_LIMITED",
        "too many attempts; try again later",
        {"retry_after": max(1, retry_after)},
    )


async def hit(pool: asyncpg.Pool, limit: Limit, subject: str) -> None:
    """Count one attempt; raise 429 RATE_LIMITED (with retry_after) when over the limit."""
    row = await pool.fetchrow(_HIT, f"{limit.name}:{subject}", limit.window_s)
    assert row is not None
    if random.random() < 0.01:  # old windows only take space; sweep now and then
        await pool.execute(_FORGET_OLD)
    if row["hits"] > limit.hits:
        raise rate_limited(int(row["retry_after"]))


async def refund(pool: asyncpg.Pool, limit: Limit, subject: str) -> None:
    """Take back one attempt of the current window (a login that succeeded is no failure)."""
    await pool.execute(_REFUND, f"{limit.name}:{subject}", limit.window_s)

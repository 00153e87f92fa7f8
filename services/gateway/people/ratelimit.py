"""Fixed-window rate limits with counters in Postgres, so a limit holds across gateway replicas.
Every limit is named; its numbers come from Settings.rate_limits (RATE_LIMIT_DEFAULTS, overridden
by OPSLEDGER_RATE_LIMITS)."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, fields

import asyncpg
from fastapi import Request

from libs.events.errors import ServiceError
from libs.events.settings import RATE_LIMIT_DEFAULTS, Settings

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
    """At most `hits` per `window_s` seconds for one subject (an IP, an account, a user)."""

    name: str
    hits: int
    window_s: int

    @classmethod
    def named(cls, name: str, settings: Settings | None = None) -> Limit:
        hits, window_s = (settings.rate_limits if settings else RATE_LIMIT_DEFAULTS)[name]
        return cls(name, hits, window_s)


@dataclass(frozen=True)
class RateLimits:
    """The gateway's limits: `from_settings` in a deployment; `app.state.rate_limits` may
    replace them (tests)."""

    register_per_ip: Limit = Limit("register-ip", *RATE_LIMIT_DEFAULTS["register-ip"])
    register_per_email: Limit = Limit("register-email", *RATE_LIMIT_DEFAULTS["register-email"])
    login_per_ip: Limit = Limit("login-ip", *RATE_LIMIT_DEFAULTS["login-ip"])
    login_failures_per_account: Limit = Limit("login-failed", *RATE_LIMIT_DEFAULTS["login-failed"])
    """Failed logins on one account from one address (the attacker's budget per address)."""
    login_failures_per_ip: Limit = Limit("login-failed-ip", *RATE_LIMIT_DEFAULTS["login-failed-ip"])
    login_failures_account_wide: Limit = Limit(
        "login-failed-account", *RATE_LIMIT_DEFAULTS["login-failed-account"]
    )
    tokens_per_user: Limit = Limit("tokens-user", *RATE_LIMIT_DEFAULTS["tokens-user"])
    tickets_per_user: Limit = Limit("tickets-user", *RATE_LIMIT_DEFAULTS["tickets-user"])
    comments_per_user: Limit = Limit("comments-user", *RATE_LIMIT_DEFAULTS["comments-user"])
    ticket_writes_per_user: Limit = Limit(
        "ticket-writes-user", *RATE_LIMIT_DEFAULTS["ticket-writes-user"]
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        defaults = cls()
        return cls(
            **{f.name: Limit.named(getattr(defaults, f.name).name, settings) for f in fields(cls)}
        )


DEFAULT_LIMITS = RateLimits()


def limits_of(request: Request) -> RateLimits:
    """The limits this app runs with: its settings', unless a test put others on app.state."""
    state = request.app.state
    limits: RateLimits | None = getattr(state, "rate_limits", None)
    if limits is None:
        limits = state.rate_limits = RateLimits.from_settings(state.deps.settings)
    return limits


def address_subject(host: str) -> str:
    """Whom a per-address limit counts: the IPv4 address, or the /64 of an IPv6 one (a /64 is
    one subscriber's, and costs nothing to hop around in). An IPv4-mapped IPv6 is its IPv4."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def rate_limited(retry_after: int) -> ServiceError:
    return ServiceError(
        429,
        "RATE_LIMITED",
        "too many attempts; try again later",
        {"retry_after": max(1, retry_after)},
    )


@dataclass(frozen=True)
class Count:
    """This window's hits for a subject, this one included, and when the window ends."""

    hits: int
    retry_after: int

    def over(self, limit: Limit) -> bool:
        return self.hits > limit.hits


async def count(pool: asyncpg.Pool, limit: Limit, subject: str) -> Count:
    """Count one attempt and say where the subject stands (never raises for being over)."""
    row = await pool.fetchrow(_HIT, f"{limit.name}:{subject}", limit.window_s)
    if row is None:  # INSERT ... RETURNING always returns its row
        raise RuntimeError("rate limit counter returned no row")
    if random.random() < 0.01:  # old windows only take space; sweep now and then
        await pool.execute(_FORGET_OLD)
    return Count(int(row["hits"]), int(row["retry_after"]))


async def hit(pool: asyncpg.Pool, limit: Limit, subject: str) -> None:
    """Count one attempt; raise 429 RATE_LIMITED (with retry_after) when over the limit."""
    counted = await count(pool, limit, subject)
    if counted.over(limit):
        raise rate_limited(counted.retry_after)


async def refund(pool: asyncpg.Pool, limit: Limit, subject: str) -> None:
    """Take back one attempt of the current window (a login that succeeded is no failure)."""
    await pool.execute(_REFUND, f"{limit.name}:{subject}", limit.window_s)

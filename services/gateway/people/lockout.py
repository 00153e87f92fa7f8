"""Slowing password guessing without locking the owner out (OWASP ASVS 5.0 V6.3).

Failed logins are counted per (account, address) and per address; an address with no recent
failures on an account goes on to the password check even while another address is refused, so
an attacker cannot lock anyone out and is slowed where they stand. A guess from a refused
address is answered 429 even with the right password, so the refusal tells them nothing.

Account-wide failures (from any address) are a soft limit: past it, an address that has failed
on the account in this window gets no second try, so an attacker rotating addresses gets one
guess per address; an address with no failures (the owner's, usually) still signs in.

Every attempt is counted before the password is checked, so concurrent guesses cannot overrun
a limit; a login that succeeds takes its counts back."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.gateway.people import ratelimit
from services.gateway.people.ratelimit import RateLimits, rate_limited


@dataclass(frozen=True)
class Attempt:
    """One login attempt: which account (its email's hash) from which address."""

    account: str
    ip: str

    @property
    def pair(self) -> str:
        return f"{self.account}:{self.ip}"


async def before_password(pool: asyncpg.Pool, limits: RateLimits, attempt: Attempt) -> None:
    """Count the attempt as a failure until it succeeds; 429 RATE_LIMITED when this address
    may not try now."""
    await ratelimit.hit(pool, limits.login_per_ip, attempt.ip)
    from_ip = await ratelimit.count(pool, limits.login_failures_per_ip, attempt.ip)
    on_pair = await ratelimit.count(pool, limits.login_failures_per_account, attempt.pair)
    on_account = await ratelimit.count(pool, limits.login_failures_account_wide, attempt.account)
    if from_ip.over(limits.login_failures_per_ip):
        raise rate_limited(from_ip.retry_after)
    if on_pair.over(limits.login_failures_per_account):
        raise rate_limited(on_pair.retry_after)
    failed_here_before = on_pair.hits > 1
    if on_account.over(limits.login_failures_account_wide) and failed_here_before:
        raise rate_limited(min(on_pair.retry_after, on_account.retry_after))


async def succeeded(pool: asyncpg.Pool, limits: RateLimits, attempt: Attempt) -> None:
    """The password was right: this attempt was no failure."""
    await ratelimit.refund(pool, limits.login_failures_per_ip, attempt.ip)
    await ratelimit.refund(pool, limits.login_failures_per_account, attempt.pair)
    await ratelimit.refund(pool, limits.login_failures_account_wide, attempt.account)

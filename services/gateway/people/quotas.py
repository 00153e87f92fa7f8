"""Per-user write limits as FastAPI dependencies: a route that writes adds one to its
`dependencies` (`dependencies=[TICKETS_QUOTA]`), and a user over their limit gets 429
RATE_LIMITED with Retry-After. Counted per user (a token counts for its owner), in Postgres, so
the limit holds across gateway replicas; the numbers are named limits (OPSLEDGER_RATE_LIMITS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request

from services.gateway.auth import CurrentUser
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.people import ratelimit
from services.gateway.people.ratelimit import Limit, RateLimits

QUOTA_RESPONSES = error_responses(429)
"""For the route's `responses`, so the 429 is documented."""


def per_user(pick: Callable[[RateLimits], Limit]) -> Any:
    """A dependency counting one write of the signed-in caller against `pick(limits)`."""

    async def count_write(request: Request, deps: DepsDep, who: CurrentUser) -> None:
        limit = pick(ratelimit.limits_of(request))
        await ratelimit.hit(deps.pool, limit, who.user_id)

    guard: Callable[..., Awaitable[None]] = count_write
    return Depends(guard)


TOKENS_QUOTA = per_user(lambda limits: limits.tokens_per_user)
TICKETS_QUOTA = per_user(lambda limits: limits.tickets_per_user)
COMMENTS_QUOTA = per_user(lambda limits: limits.comments_per_user)
TICKET_WRITES_QUOTA = per_user(lambda limits: limits.ticket_writes_per_user)
"""Every ticket write that is neither a creation nor a comment (one per request: a bulk call
counts once)."""

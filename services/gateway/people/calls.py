"""Asking the people service (libs/contracts/people.py) on behalf of an HTTP caller, and, after
a command, bringing the gateway's authentication read model up to what it wrote.

Why here and not only over the bus: the bus feeds AUTH_PROJECTION a moment later, but the next
request after a login, a logout, a role change or a revocation must already see it. So before
the route answers, the streams the command names in its receipt are read from the log (the
store, shared by every service; never the people service's tables) and run through the same
dispatcher the live consumer uses. The per-stream checkpoints make that and the bus delivery
one application between them, whichever comes first."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel

from libs.contracts.people import Receipt, Written
from libs.events.consumers import ReplayInProgress
from libs.events.contract import Method, ask
from libs.events.envelope import Actor
from libs.events.runtime import Deps
from services.gateway.auth import Principal
from services.gateway.people.projection import AUTH_PROJECTION

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")
R = TypeVar("R", bound=Receipt)

ANONYMOUS = Actor.service("gateway")
"""Who asks for a caller not signed in yet (register, login): the gateway itself."""


async def query(
    deps: Deps,
    method: Method[In, Out],
    body: In,
    *,
    who: Principal | None,
    correlation_id: str | None,
) -> Out:
    """Ask `method` as `who` (the gateway itself for an anonymous caller)."""
    if who is None:
        return await ask(deps.rpc, method, body, actor=ANONYMOUS, correlation_id=correlation_id)
    return await ask(
        deps.rpc,
        method,
        body,
        actor=who.actor,
        role=who.role.value,
        on_behalf_of=who.user_id,
        correlation_id=correlation_id,
    )


async def command(
    deps: Deps,
    method: Method[In, R],
    body: In,
    *,
    who: Principal | None,
    correlation_id: str | None,
) -> R:
    """Ask `method`, then catch the authentication read model up to its receipt."""
    receipt = await query(deps, method, body, who=who, correlation_id=correlation_id)
    await catch_up(deps, receipt.written)
    return receipt


async def catch_up(deps: Deps, written: Sequence[Written]) -> None:
    """Apply the events of these streams, up to the versions written, to AUTH_PROJECTION (those
    applied already are skipped by its checkpoints). While a replay of it runs, the replay or
    the live consumer after it applies them."""
    if not written:
        return
    dispatcher = deps.dispatcher(AUTH_PROJECTION, service="gateway")
    async with deps.pool.acquire() as conn, conn.transaction():
        envelopes = []
        for item in written:
            envelopes += await deps.store.read_stream(
                item.stream_id, to_version=item.version, types=AUTH_PROJECTION.types, conn=conn
            )
        with contextlib.suppress(ReplayInProgress):
            await dispatcher.apply_batch(conn, envelopes)

"""Who may call a service's RPC method, checked before its body is read: the callers the
gateway presents (a user with a role) and services calling as themselves (no role). One shape
for every service: a `Guard` is a predicate and the sentence a refused caller is given, and
`guarded` wraps an answer with it, refusing with the service's own FORBIDDEN refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from libs.events.bus import RpcHandler, RpcRequest
from libs.events.envelope import ActorKind

STAFF: Final = frozenset({"operator", "admin"})
Guard = tuple[Callable[[RpcRequest], bool], str]


def is_service(req: RpcRequest) -> bool:
    """A service (or the system) calling as itself, not on a user's behalf."""
    return req.role is None and req.actor.kind in (ActorKind.SERVICE, ActorKind.SYSTEM)


def staff(req: RpcRequest) -> bool:
    return req.role in STAFF or is_service(req)


def admin(req: RpcRequest) -> bool:
    return req.role == "admin" or is_service(req)


def guarded(guard: Guard, answer: RpcHandler, refuse: Callable[[str], Exception]) -> RpcHandler:
    """`answer`, for the callers `guard` lets through; the others get `refuse(message)`."""
    allowed, message = guard

    async def handle(req: RpcRequest) -> object:
        if not allowed(req):
            raise refuse(message)
        return await answer(req)

    return handle

"""Who calls the tickets service, and the metadata their events carry, from an RPC request."""

from __future__ import annotations

from typing import Final

from libs.contracts.ticket_requests import AutomationIn
from libs.events.bus import RpcRequest
from libs.events.envelope import ActorKind, Metadata
from services.tickets.commands import Caller
from services.tickets.refusals import forbidden

ROLES: Final = frozenset({"requester", "operator", "admin"})


def caller_of(req: RpcRequest) -> Caller:
    """A user with the role the gateway authenticated, or automation (no role, or a service or
    system actor). An API token acts for its owner: tickets belong to the person, the events
    name the token."""
    if req.role is not None and req.role not in ROLES:
        raise forbidden(f"unknown role {req.role!r}")
    automation = req.role is None or req.actor.kind in (ActorKind.SERVICE, ActorKind.SYSTEM)
    return Caller(user_id=req.on_behalf_of or req.actor.id, role=req.role, automation=automation)


def metadata_of(req: RpcRequest) -> Metadata:
    return req.metadata("tickets")


def automation_of(req: RpcRequest, body: AutomationIn) -> tuple[Metadata, str | None]:
    """The metadata and idempotency key of a command automation sent with its cause and key
    (a job's step); from anyone else both are ignored."""
    meta = metadata_of(req)
    if not caller_of(req).automation:
        return meta, None
    if body.cause is not None:
        meta = meta.model_copy(
            update={"causation_id": body.cause.event_id, "causation_depth": body.cause.depth + 1}
        )
    return meta, body.idempotency_key

"""Ticket and ticket-type routes: authenticate, then send the command or query to the tickets
service over NATS request/reply. No ticket logic lives here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel

from libs.events.errors import ServiceError
from services.gateway.auth import AdminUser, CurrentUser, Principal, StaffUser
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.ticket_models import (
    TICKET_KEY,
    AssignIn,
    AuditPage,
    BulkIn,
    BulkOut,
    CommentIn,
    CommentOut,
    CommentPage,
    Priority,
    PriorityIn,
    RatingIn,
    RelationIn,
    Status,
    StatusIn,
    TagIn,
    TicketIn,
    TicketOut,
    TicketPage,
    TicketTypeIn,
    TicketTypeOut,
    TicketTypePage,
    TicketTypeUpdate,
)

# every ticket operation is answered by the tickets service, over NATS
router = APIRouter(prefix="/api/v1", tags=["tickets"], responses=error_responses(503, 504))

Key = Annotated[str, Path(pattern=TICKET_KEY, description="ticket key, e.g. OPS-42")]
TypeKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


async def _call(
    deps: DepsDep, request: Request, who: Principal, method: str, body: dict[str, Any]
) -> Any:
    return await deps.rpc.call(
        "tickets",
        method,
        body,
        actor=who.actor,
        role=who.role.value,
        on_behalf_of=who.user_id,
        correlation_id=request.headers.get("x-correlation-id"),
    )


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


@router.get("/ticket-types", response_model=TicketTypePage)
async def list_types(deps: DepsDep, request: Request, who: CurrentUser) -> Any:
    return await _call(deps, request, who, "types.list", {})


@router.post("/ticket-types", status_code=status.HTTP_201_CREATED, response_model=TicketTypeOut)
async def create_type(deps: DepsDep, request: Request, who: AdminUser, body: TicketTypeIn) -> Any:
    return await _call(deps, request, who, "types.create", _dump(body))


@router.get("/ticket-types/{key}", response_model=TicketTypeOut)
async def get_type(deps: DepsDep, request: Request, who: CurrentUser, key: TypeKey) -> Any:
    return await _call(deps, request, who, "types.get", {"key": key})


@router.put("/ticket-types/{key}", response_model=TicketTypeOut)
async def update_type(
    deps: DepsDep, request: Request, who: AdminUser, key: TypeKey, body: TicketTypeUpdate
) -> Any:
    """Publish a new version of the type's field schema; existing tickets keep theirs."""
    return await _call(deps, request, who, "types.update", {"key": key, **_dump(body)})


@router.post("/tickets", status_code=status.HTTP_201_CREATED, response_model=TicketOut)
async def create_ticket(deps: DepsDep, request: Request, who: CurrentUser, body: TicketIn) -> Any:
    return await _call(deps, request, who, "tickets.create", _dump(body))


def _filters(
    status: Status | None,
    type: str | None,
    priority: Priority | None,
    assignee: str | None,
    tag: str | None,
    q: str | None,
) -> dict[str, Any]:
    given = {
        "status": status,
        "type": type,
        "priority": priority,
        "assignee": assignee,
        "tag": tag,
        "q": q,
    }
    return {k: v for k, v in given.items() if v is not None}


Short = Annotated[str | None, Query(max_length=200)]


@router.get("/tickets", response_model=TicketPage)
async def list_tickets(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    status: Status | None = None,
    type: Short = None,
    priority: Priority | None = None,
    assignee: Short = None,
    tag: Short = None,
    q: Short = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Any:
    """Tickets matching every filter given; requesters see only their own."""
    body = _filters(status, type, priority, assignee, tag, q) | {"limit": limit}
    if cursor is not None:
        body["cursor"] = cursor
    return await _call(deps, request, who, "tickets.list", body)


CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the tickets as CSV",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get("/tickets/export.csv", response_class=Response, responses=CSV)
async def export_tickets(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    status: Status | None = None,
    type: Short = None,
    priority: Priority | None = None,
    assignee: Short = None,
    tag: Short = None,
    q: Short = None,
) -> Response:
    """The filtered ticket list as CSV."""
    body = _filters(status, type, priority, assignee, tag, q)
    result = await _call(deps, request, who, "tickets.export", body)
    return Response(
        content=result["csv"],
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
    )


@router.post("/tickets/bulk", response_model=BulkOut)
async def bulk(deps: DepsDep, request: Request, who: StaffUser, body: BulkIn) -> Any:
    """Assign or close many tickets; each gets its own result (locked ones are refused)."""
    return await _call(deps, request, who, "tickets.bulk", _dump(body))


@router.get("/tickets/{key}", response_model=TicketOut)
async def get_ticket(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    key: Key,
    as_of: Annotated[datetime | None, Query(description="read the ticket as it was then")] = None,
) -> Any:
    body: dict[str, Any] = {"key": key}
    if as_of is not None:
        if as_of.tzinfo is None:
            raise ServiceError(
                422, "VALIDATION_ERROR", "as_of needs a timezone", {"as_of": "no timezone"}
            )
        body["as_of"] = as_of.isoformat()
    return await _call(deps, request, who, "tickets.get", body)


@router.post("/tickets/{key}/status", response_model=TicketOut)
async def change_status(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: StatusIn
) -> Any:
    """Staff move tickets through the transition table; a requester may only reopen their own.
    409 PENDING_APPROVAL while a gated action waits; 409 INVALID_TRANSITION otherwise."""
    return await _call(deps, request, who, "tickets.change_status", {"key": key, **_dump(body)})


@router.post("/tickets/{key}/assign", response_model=TicketOut)
async def assign(deps: DepsDep, request: Request, who: StaffUser, key: Key, body: AssignIn) -> Any:
    return await _call(deps, request, who, "tickets.assign", {"key": key, **_dump(body)})


@router.post("/tickets/{key}/priority", response_model=TicketOut)
async def set_priority(
    deps: DepsDep, request: Request, who: StaffUser, key: Key, body: PriorityIn
) -> Any:
    return await _call(deps, request, who, "tickets.set_priority", {"key": key, **_dump(body)})


@router.post("/tickets/{key}/tags", response_model=TicketOut)
async def add_tag(deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: TagIn) -> Any:
    return await _call(deps, request, who, "tickets.add_tag", {"key": key, **_dump(body)})


@router.delete("/tickets/{key}/tags", response_model=TicketOut)
async def remove_tag(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    key: Key,
    tag: Annotated[str, Query(min_length=1, max_length=50)],
) -> Any:
    return await _call(deps, request, who, "tickets.remove_tag", {"key": key, "tag": tag})


@router.post("/tickets/{key}/comments", status_code=201, response_model=CommentOut)
async def comment(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: CommentIn
) -> Any:
    """Internal comments are for staff and hidden from requesters."""
    return await _call(deps, request, who, "tickets.comment", {"key": key, **_dump(body)})


@router.get("/tickets/{key}/comments", response_model=CommentPage)
async def comments(deps: DepsDep, request: Request, who: CurrentUser, key: Key) -> Any:
    return await _call(deps, request, who, "tickets.comments", {"key": key})


@router.post("/tickets/{key}/relations", response_model=TicketOut)
async def relate(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: RelationIn
) -> Any:
    return await _call(deps, request, who, "tickets.relate", {"key": key, **_dump(body)})


@router.post("/tickets/{key}/rating", response_model=TicketOut)
async def rate(deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: RatingIn) -> Any:
    """Its requester rates a resolved or closed ticket, once."""
    return await _call(deps, request, who, "tickets.rate", {"key": key, **_dump(body)})


@router.get("/tickets/{key}/events", response_model=AuditPage)
async def audit_trail(deps: DepsDep, request: Request, who: CurrentUser, key: Key) -> Any:
    """Every event of the ticket in order, with actor, time and what changed."""
    return await _call(deps, request, who, "tickets.events", {"key": key})

"""Ticket and ticket-type routes: authenticate, then ask the tickets service (NATS request/reply)
by its contract, `libs.contracts.tickets`, whose models are also these routes' bodies and answers.
No ticket logic lives here.

Every list is one page (`limit`, `cursor` -> `{"items", "next_cursor"}`) that fits one bus
reply, so a page may hold fewer than `limit` items; the CSV export streams the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from libs.contracts import tickets as contract
from libs.contracts.tickets import MAX_EXPORT_PAGE, MAX_PAGE, TICKET_KEY, TYPE_KEY
from libs.events.catalog.tickets import TicketPriority, TicketStatus
from libs.events.errors import ServiceError
from services.gateway.auth import AdminUser, CurrentUser, StaffUser
from services.gateway.csv_pages import csv_pages
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.forwarding import Cursor, Short, ask_as, request_of
from services.gateway.people.quotas import (
    COMMENTS_QUOTA,
    QUOTA_RESPONSES,
    TICKET_WRITES_QUOTA,
    TICKETS_QUOTA,
)

# every ticket operation is answered by the tickets service, over NATS
router = APIRouter(prefix="/api/v1", tags=["tickets"], responses=error_responses(502, 503, 504))

Key = Annotated[str, Path(pattern=TICKET_KEY, description="ticket key, e.g. OPS-42")]
TypeKey = Annotated[str, Path(pattern=TYPE_KEY)]

PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="the most items on this page")]

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")


def _keyed(model: type[In], key: str, body: BaseModel) -> In:
    return request_of(model, key=key, **body.model_dump())


WRITE_LIMITED: dict[str, Any] = {
    "dependencies": [TICKET_WRITES_QUOTA],
    "responses": QUOTA_RESPONSES,
}
"""Every other ticket write counts against the per-user write limit (429 RATE_LIMITED)."""


@router.get("/ticket-types")
async def list_types(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    limit: PageLimit = 100,
    cursor: Cursor = None,
) -> contract.TicketTypePage:
    page = request_of(contract.TypesListIn, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.TYPES_LIST, page)


@router.post("/ticket-types", status_code=status.HTTP_201_CREATED, **WRITE_LIMITED)
async def create_type(
    deps: DepsDep, request: Request, who: AdminUser, body: contract.TicketTypeIn
) -> contract.TicketTypeOut:
    return await ask_as(deps, request, who, contract.TYPES_CREATE, body)


@router.get("/ticket-types/{key}")
async def get_type(
    deps: DepsDep, request: Request, who: CurrentUser, key: TypeKey
) -> contract.TicketTypeOut:
    return await ask_as(
        deps, request, who, contract.TYPES_GET, request_of(contract.TypeGetIn, key=key)
    )


@router.put("/ticket-types/{key}", **WRITE_LIMITED)
async def update_type(
    deps: DepsDep, request: Request, who: AdminUser, key: TypeKey, body: contract.TicketTypeUpdate
) -> contract.TicketTypeOut:
    """Publish a new version of the type's field schema; existing tickets keep theirs."""
    revise = _keyed(contract.ReviseTypeIn, key, body)
    return await ask_as(deps, request, who, contract.TYPES_UPDATE, revise)


@router.post(
    "/tickets",
    status_code=status.HTTP_201_CREATED,
    responses=QUOTA_RESPONSES,
    dependencies=[TICKETS_QUOTA],  # per-user write limit (429 RATE_LIMITED)
)
async def create_ticket(
    deps: DepsDep, request: Request, who: CurrentUser, body: contract.TicketIn
) -> contract.TicketOut:
    return await ask_as(deps, request, who, contract.CREATE, body)


def _filters(
    status: TicketStatus | None,
    type: str | None,
    priority: TicketPriority | None,
    assignee: str | None,
    tag: str | None,
    q: str | None,
) -> dict[str, Any]:
    return {
        "status": status,
        "type": type,
        "priority": priority,
        "assignee": assignee,
        "tag": tag,
        "q": q,
    }


@router.get("/tickets")
async def list_tickets(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    status: TicketStatus | None = None,
    type: Short = None,
    priority: TicketPriority | None = None,
    assignee: Short = None,
    tag: Short = None,
    q: Short = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> contract.TicketPage:
    """Tickets matching every filter given; requesters see only their own."""
    filters = _filters(status, type, priority, assignee, tag, q)
    query = request_of(contract.ListIn, **filters, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.LIST, query)


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
    status: TicketStatus | None = None,
    type: Short = None,
    priority: TicketPriority | None = None,
    assignee: Short = None,
    tag: Short = None,
    q: Short = None,
) -> Response:
    """The filtered ticket list as CSV (at most 10,000 tickets), streamed a page at a time."""
    filters = _filters(status, type, priority, assignee, tag, q)

    async def page(cursor: str | None, limit: int) -> contract.CsvExport:
        query = request_of(contract.ExportIn, **filters, limit=limit, cursor=cursor)
        return await ask_as(deps, request, who, contract.EXPORT, query)

    first = await page(None, MAX_EXPORT_PAGE)
    return StreamingResponse(
        csv_pages(first, page),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
    )


@router.post("/tickets/bulk", **WRITE_LIMITED)
async def bulk(
    deps: DepsDep, request: Request, who: StaffUser, body: contract.BulkIn
) -> contract.BulkOut:
    """Assign or close many tickets; each gets its own result (locked ones are refused)."""
    return await ask_as(deps, request, who, contract.BULK, body)


@router.get("/tickets/{key}")
async def get_ticket(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    key: Key,
    as_of: Annotated[datetime | None, Query(description="read the ticket as it was then")] = None,
) -> contract.TicketOut:
    if as_of is not None and as_of.tzinfo is None:
        raise ServiceError(
            422, "VALIDATION_ERROR", "as_of needs a timezone", {"as_of": "no timezone"}
        )
    return await ask_as(
        deps, request, who, contract.GET, request_of(contract.GetIn, key=key, as_of=as_of)
    )


@router.post("/tickets/{key}/status", **WRITE_LIMITED)
async def change_status(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: contract.StatusIn
) -> contract.TicketOut:
    """Staff move tickets through the transition table; a requester may only reopen their own.
    409 PENDING_APPROVAL while a gated action waits; 409 INVALID_TRANSITION otherwise."""
    change = _keyed(contract.ChangeStatusIn, key, body)
    return await ask_as(deps, request, who, contract.CHANGE_STATUS, change)


@router.post("/tickets/{key}/assign", **WRITE_LIMITED)
async def assign(
    deps: DepsDep, request: Request, who: StaffUser, key: Key, body: contract.AssignIn
) -> contract.TicketOut:
    assignment = _keyed(contract.AssignTicketIn, key, body)
    return await ask_as(deps, request, who, contract.ASSIGN, assignment)


@router.post("/tickets/{key}/priority", **WRITE_LIMITED)
async def set_priority(
    deps: DepsDep, request: Request, who: StaffUser, key: Key, body: contract.PriorityIn
) -> contract.TicketOut:
    change = _keyed(contract.SetPriorityIn, key, body)
    return await ask_as(deps, request, who, contract.SET_PRIORITY, change)


@router.post("/tickets/{key}/tags", **WRITE_LIMITED)
async def add_tag(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: contract.TagIn
) -> contract.TicketOut:
    return await ask_as(
        deps, request, who, contract.ADD_TAG, _keyed(contract.TagTicketIn, key, body)
    )


@router.delete("/tickets/{key}/tags", **WRITE_LIMITED)
async def remove_tag(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    key: Key,
    tag: Annotated[str, Query(min_length=1, max_length=50)],
) -> contract.TicketOut:
    untag = request_of(contract.TagTicketIn, key=key, tag=tag)
    return await ask_as(deps, request, who, contract.REMOVE_TAG, untag)


@router.post(
    "/tickets/{key}/comments",
    status_code=201,
    responses=QUOTA_RESPONSES,
    dependencies=[COMMENTS_QUOTA],  # per-user write limit (429 RATE_LIMITED)
)
async def comment(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: contract.CommentIn
) -> contract.CommentOut:
    """Internal comments are for staff and hidden from requesters."""
    new = _keyed(contract.AddCommentIn, key, body)
    return await ask_as(deps, request, who, contract.COMMENT, new)


@router.get("/tickets/{key}/comments")
async def comments(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    key: Key,
    limit: PageLimit = 100,
    cursor: Cursor = None,
) -> contract.CommentPage:
    """The ticket's comments in order, a page at a time."""
    page = request_of(contract.CommentsIn, key=key, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.COMMENTS, page)


@router.post("/tickets/{key}/relations", **WRITE_LIMITED)
async def relate(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: contract.RelationIn
) -> contract.TicketOut:
    return await ask_as(deps, request, who, contract.RELATE, _keyed(contract.RelateIn, key, body))


@router.post("/tickets/{key}/rating", **WRITE_LIMITED)
async def rate(
    deps: DepsDep, request: Request, who: CurrentUser, key: Key, body: contract.RatingIn
) -> contract.TicketOut:
    """Its requester rates a resolved or closed ticket, once."""
    return await ask_as(deps, request, who, contract.RATE, _keyed(contract.RateIn, key, body))


@router.get("/tickets/{key}/events")
async def audit_trail(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    key: Key,
    limit: PageLimit = 100,
    cursor: Cursor = None,
) -> contract.AuditPage:
    """Every event of the ticket in order, with actor, time and what changed, a page at a
    time."""
    page = request_of(contract.EventsIn, key=key, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.EVENTS, page)

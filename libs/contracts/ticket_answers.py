"""The tickets service's answer models: tickets, ticket types, comments, the audit trail, bulk
results, and the pages lists answer with (`{"items": [...], "next_cursor"}`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

from libs.events.catalog.tickets import RelationKind, TicketPriority, TicketStatus


class FieldOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: str
    label: str
    type: str
    required: bool = False
    options: list[str] | None = None
    default: Any = None
    help: str | None = None


class TicketTypeOut(BaseModel):
    key: str
    name: str
    version: int
    builtin: bool
    fields: list[FieldOut]


class TicketTypePage(BaseModel):
    items: list[TicketTypeOut]
    next_cursor: str | None = None


class Relation(BaseModel):
    model_config = ConfigDict(frozen=True)
    relation: RelationKind
    key: str


class Rating(BaseModel):
    model_config = ConfigDict(frozen=True)
    score: int
    comment: str | None = None


class PendingApproval(BaseModel):
    """The lock: `{approval_id, rule_id, since}` as the contract reads it (`action` and
    `requested_at` say what waits and repeat `since`, kept for earlier clients)."""

    model_config = ConfigDict(frozen=True)
    approval_id: str
    action: str
    requested_at: datetime | None = None
    rule_id: str | None = None
    since: datetime | None = None


class TicketOut(BaseModel):
    key: str
    type: str
    type_version: int
    title: str
    description: str | None
    status: TicketStatus
    priority: TicketPriority
    requester_id: str
    assignee_id: str | None
    fields: dict[str, Any]
    tags: list[str]
    relations: list[Relation]
    rating: Rating | None
    locked: bool
    pending_approval: PendingApproval | None
    created_at: datetime
    updated_at: datetime
    version: int


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None


class CsvExport(BaseModel):
    """One page of the CSV export: its rows as CSV text (the first page starts with the header
    row), how many tickets they are, and the cursor of the next page (None: the last)."""

    csv: str
    rows: int = 0
    next_cursor: str | None = None


class CommentOut(BaseModel):
    id: str
    author_id: str
    body: str
    internal: bool
    created_at: datetime


class CommentPage(BaseModel):
    items: list[CommentOut]
    next_cursor: str | None = None


class BulkError(BaseModel):
    code: str
    message: str


class BulkResult(BaseModel):
    key: str
    ok: bool
    status: int | None = None
    error: BulkError | None = None


class BulkOut(BaseModel):
    results: list[BulkResult]


class AuditEvent(BaseModel):
    position: int
    version: int
    type: str
    recorded_at: datetime
    actor: dict[str, Any]
    data: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None = None


def _sparse(out: BaseModel) -> Any:
    return out.model_dump(mode="json", exclude_none=True)


BulkOnTheWire = Annotated[BulkOut, PlainSerializer(_sparse)]
"""Over RPC a result that succeeded carries no `error` key (as the service always answered)."""

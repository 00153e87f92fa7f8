"""HTTP shapes of tickets, ticket types and comments (the OpenAPI contract of the ticket routes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["open", "in_progress", "waiting_for_requester", "resolved", "closed"]
Priority = Literal["low", "medium", "high", "urgent"]
RelationKind = Literal["related", "blocks", "duplicate"]
TICKET_KEY = r"^[A-Z][A-Z0-9]{0,9}-[1-9][0-9]{0,8}$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class TicketTypeIn(Body):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    name: str = Field(min_length=1, max_length=100)
    fields: list[dict[str, Any]] = Field(default_factory=list, max_length=100)


class TicketTypeUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    fields: list[dict[str, Any]] = Field(max_length=100)


class Relation(BaseModel):
    relation: RelationKind
    key: str


class Rating(BaseModel):
    score: int
    comment: str | None = None


class PendingApproval(BaseModel):
    approval_id: str
    action: str
    requested_at: datetime | None = None


class TicketOut(BaseModel):
    key: str
    type: str
    type_version: int
    title: str
    description: str | None
    status: Status
    priority: Priority
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


class TicketIn(Body):
    type: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    priority: Priority | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class StatusIn(Body):
    status: Status


class AssignIn(Body):
    assignee_id: str = Field(min_length=1, max_length=200)


class PriorityIn(Body):
    priority: Priority


class TagIn(Body):
    tag: str = Field(min_length=1, max_length=50)


class CommentIn(Body):
    body: str = Field(min_length=1, max_length=20_000)
    internal: bool = False


class CommentOut(BaseModel):
    id: str
    author_id: str
    body: str
    internal: bool
    created_at: datetime


class CommentPage(BaseModel):
    items: list[CommentOut]
    next_cursor: str | None = None


class RatingIn(Body):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2_000)


class RelationIn(Body):
    relation: RelationKind
    target: str = Field(pattern=TICKET_KEY)


class BulkIn(Body):
    keys: list[str] = Field(min_length=1, max_length=200)
    op: Literal["assign", "close"]
    assignee_id: str | None = Field(default=None, min_length=1, max_length=200)


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

"""The tickets service's contract: every RPC method it answers, with its request and answer models.

The tickets service registers a handler per `Method` (`serve`); the gateway calls them (`ask`) and
uses the same models as its HTTP bodies and answers, so one definition is checked on both sides.
An HTTP body (`StatusIn`) is the RPC request without the ticket key the path names
(`ChangeStatusIn` adds it). Statuses, priorities and relation kinds are the event catalog's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from libs.events.catalog.tickets import RelationKind, TicketPriority, TicketStatus
from libs.events.contract import Method

TICKET_KEY: Final = r"^[A-Z][A-Z0-9]{0,9}-[1-9][0-9]{0,8}$"
"""A ticket key as a path or a relation names it: `OPS-42`."""
TYPE_KEY: Final = r"^[a-z][a-z0-9_]{0,39}$"
MAX_FIELDS: Final = 100
"""Fields of one ticket type."""

Key = Annotated[str, Field(min_length=1, max_length=40)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
TagText = Annotated[str, Field(min_length=1, max_length=50)]
UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Body(BaseModel):
    """A request: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


# requests: ticket types


class NoBody(Body):
    pass


class TypeGetIn(Body):
    key: Key
    version: int | None = Field(default=None, ge=1)


class TicketTypeIn(Body):
    """A new ticket type (each field is checked against the field schema by the service)."""

    key: str = Field(pattern=TYPE_KEY)
    name: Name
    fields: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_FIELDS)


class TicketTypeUpdate(Body):
    name: Name | None = None
    fields: list[dict[str, Any]] = Field(max_length=MAX_FIELDS)


class ReviseTypeIn(TicketTypeUpdate):
    key: Key


# requests: tickets


class TicketIn(Body):
    type: Key
    title: Title
    description: Annotated[str, Field(max_length=20_000)] | None = None
    priority: TicketPriority | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class KeyIn(Body):
    key: Key


class GetIn(KeyIn):
    as_of: Annotated[AwareDatetime, AfterValidator(_in_utc)] | None = None
    """Read the ticket as it was then."""


class Filters(Body):
    status: TicketStatus | None = None
    type: Short | None = None
    priority: TicketPriority | None = None
    assignee: Short | None = None
    tag: TagText | None = None
    q: Short | None = None


class ListIn(Filters):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, Field(max_length=500)] | None = None


class StatusIn(Body):
    status: TicketStatus


class ChangeStatusIn(KeyIn, StatusIn):
    pass


class AssignIn(Body):
    assignee_id: UserId


class AssignTicketIn(KeyIn, AssignIn):
    pass


class PriorityIn(Body):
    priority: TicketPriority


class SetPriorityIn(KeyIn, PriorityIn):
    pass


class TagIn(Body):
    tag: TagText


class TagTicketIn(KeyIn, TagIn):
    pass


class CommentIn(Body):
    body: Text
    internal: bool = False


class AddCommentIn(KeyIn, CommentIn):
    pass


class RelationIn(Body):
    relation: RelationKind
    target: str = Field(pattern=TICKET_KEY)


class RelateIn(KeyIn, RelationIn):
    pass


class RatingIn(Body):
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, Field(max_length=2_000)] | None = None


class RateIn(KeyIn, RatingIn):
    pass


class BulkIn(Body):
    keys: list[Key] = Field(min_length=1, max_length=200)
    op: Literal["assign", "close"]
    assignee_id: UserId | None = None

    @model_validator(mode="after")
    def _assign_names_the_assignee(self) -> BulkIn:
        if self.op == "assign" and self.assignee_id is None:
            raise ValueError("op 'assign' needs an assignee_id")
        return self


# answers


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
    model_config = ConfigDict(frozen=True)
    approval_id: str
    action: str
    requested_at: datetime | None = None


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
    csv: str


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


_BULK_ON_THE_WIRE = Annotated[BulkOut, PlainSerializer(_sparse)]
"""Over RPC a result that succeeded carries no `error` key (as the service always answered)."""

# methods: `ns.rpc.tickets.<name>`

TYPES_LIST: Method[NoBody, TicketTypePage] = Method("tickets", "types.list", NoBody, TicketTypePage)
TYPES_GET: Method[TypeGetIn, TicketTypeOut] = Method(
    "tickets", "types.get", TypeGetIn, TicketTypeOut
)
TYPES_CREATE: Method[TicketTypeIn, TicketTypeOut] = Method(
    "tickets", "types.create", TicketTypeIn, TicketTypeOut
)
TYPES_UPDATE: Method[ReviseTypeIn, TicketTypeOut] = Method(
    "tickets", "types.update", ReviseTypeIn, TicketTypeOut
)
CREATE: Method[TicketIn, TicketOut] = Method("tickets", "tickets.create", TicketIn, TicketOut)
GET: Method[GetIn, TicketOut] = Method("tickets", "tickets.get", GetIn, TicketOut)
LIST: Method[ListIn, TicketPage] = Method("tickets", "tickets.list", ListIn, TicketPage)
EXPORT: Method[Filters, CsvExport] = Method("tickets", "tickets.export", Filters, CsvExport)
CHANGE_STATUS: Method[ChangeStatusIn, TicketOut] = Method(
    "tickets", "tickets.change_status", ChangeStatusIn, TicketOut
)
ASSIGN: Method[AssignTicketIn, TicketOut] = Method(
    "tickets", "tickets.assign", AssignTicketIn, TicketOut
)
SET_PRIORITY: Method[SetPriorityIn, TicketOut] = Method(
    "tickets", "tickets.set_priority", SetPriorityIn, TicketOut
)
ADD_TAG: Method[TagTicketIn, TicketOut] = Method(
    "tickets", "tickets.add_tag", TagTicketIn, TicketOut
)
REMOVE_TAG: Method[TagTicketIn, TicketOut] = Method(
    "tickets", "tickets.remove_tag", TagTicketIn, TicketOut
)
COMMENT: Method[AddCommentIn, CommentOut] = Method(
    "tickets", "tickets.comment", AddCommentIn, CommentOut
)
COMMENTS: Method[KeyIn, CommentPage] = Method("tickets", "tickets.comments", KeyIn, CommentPage)
RELATE: Method[RelateIn, TicketOut] = Method("tickets", "tickets.relate", RelateIn, TicketOut)
RATE: Method[RateIn, TicketOut] = Method("tickets", "tickets.rate", RateIn, TicketOut)
BULK: Method[BulkIn, BulkOut] = Method("tickets", "tickets.bulk", BulkIn, _BULK_ON_THE_WIRE)
EVENTS: Method[KeyIn, AuditPage] = Method("tickets", "tickets.events", KeyIn, AuditPage)

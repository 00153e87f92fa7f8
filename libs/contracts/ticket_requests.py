"""The tickets service's request models, with the bounds that keep every stored value small.

Every request is a `Body`: unknown keys are refused, and so is anything `input_problem` refuses
(a NUL, a lone surrogate, nesting deeper than 32 levels) before pydantic or the bus serialises
it. Every string has a length bound and every free-form JSON value (`fields`) a size bound, so
one stored ticket, comment or ticket type always fits a bus reply page (`ticket_pages`).
An HTTP body (`StatusIn`) is the RPC request without the ticket key the path names
(`ChangeStatusIn` adds it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from libs.events.catalog.tickets import RelationKind, TicketPriority, TicketStatus
from libs.events.inputs import input_problem

TICKET_KEY: Final = r"^[A-Z][A-Z0-9]{0,9}-[1-9][0-9]{0,8}$"
"""A ticket key as a path or a relation names it: `OPS-42`."""
TYPE_KEY: Final = r"^[a-z][a-z0-9_]{0,39}$"
MAX_FIELDS: Final = 100
"""Fields of one ticket type."""
MAX_TEXT: Final = 20_000
"""Characters of a description or a comment (at most 80 KB as UTF-8)."""
MAX_FIELDS_BYTES: Final = 64 * 1024
"""A ticket's field values, or a ticket type's field schema, as compact UTF-8 JSON."""
MAX_BULK_KEYS: Final = 100
MAX_PAGE: Final = 200
"""The most items one list call asks for (a page may hold fewer: see `ticket_pages`)."""
MAX_EXPORT_PAGE: Final = 500

Key = Annotated[str, Field(min_length=1, max_length=40)]
TicketKey = Annotated[str, Field(pattern=TICKET_KEY)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
TagText = Annotated[str, Field(min_length=1, max_length=50)]
UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Cursor = Annotated[str, Field(max_length=500)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE)]


def encoded_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON, as it is stored and sent."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", errors="replace"))


def _at_most_bytes(limit: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if encoded_size(value) > limit:
            raise ValueError(f"must be at most {limit} bytes as JSON")
        return value

    return check


FieldValues = Annotated[dict[str, Any], AfterValidator(_at_most_bytes(MAX_FIELDS_BYTES))]
FieldSchemas = Annotated[
    list[dict[str, Any]],
    Field(max_length=MAX_FIELDS),
    AfterValidator(_at_most_bytes(MAX_FIELDS_BYTES)),
]


class Body(BaseModel):
    """A request: unknown keys are refused, and so is input no way in accepts."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # before any field is parsed: a too-deep value must never reach a serialiser
        problem = input_problem(data)
        if problem is not None:
            raise ValueError(f"the request {problem}")
        return data


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


# ticket types


class NoBody(Body):
    pass


class TypesListIn(Body):
    limit: Limit = 100
    cursor: Cursor | None = None


class TypeGetIn(Body):
    key: Key
    version: int | None = Field(default=None, ge=1)


class TicketTypeIn(Body):
    """A new ticket type (each field is checked against the field schema by the service)."""

    key: str = Field(pattern=TYPE_KEY)
    name: Name
    fields: FieldSchemas = Field(default_factory=list)


class TicketTypeUpdate(Body):
    name: Name | None = None
    fields: FieldSchemas


class ReviseTypeIn(TicketTypeUpdate):
    key: Key


# tickets


class TicketIn(Body):
    type: Key
    title: Title
    description: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    priority: TicketPriority | None = None
    fields: FieldValues = Field(default_factory=dict)


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
    limit: Limit = 50
    cursor: Cursor | None = None


class ExportIn(Filters):
    """One page of the CSV export; the first (no cursor) starts with the header row."""

    limit: Annotated[int, Field(ge=1, le=MAX_EXPORT_PAGE)] = MAX_EXPORT_PAGE
    cursor: Cursor | None = None


class CommentsIn(KeyIn):
    limit: Limit = 100
    cursor: Cursor | None = None


class EventsIn(KeyIn):
    limit: Limit = 100
    cursor: Cursor | None = None


class StatusIn(Body):
    status: TicketStatus


class Cause(Body):
    """The event a command from automation was caused by, and that event's causation depth."""

    event_id: UUID
    depth: int = Field(ge=0, le=1_000)


class AutomationIn(Body):
    """What automation (the executor) adds to a ticket command: an idempotency key (a repeated
    command with the same key appends nothing and answers the ticket as it is) and its cause,
    which the events it writes carry (so the rules' loop guard sees the chain). The tickets
    service honours them from service callers only; HTTP bodies never carry them."""

    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    cause: Cause | None = None


class ChangeStatusIn(KeyIn, StatusIn, AutomationIn):
    pass


class AssignIn(Body):
    assignee_id: UserId


class AssignTicketIn(KeyIn, AssignIn, AutomationIn):
    pass


class PriorityIn(Body):
    priority: TicketPriority


class SetPriorityIn(KeyIn, PriorityIn, AutomationIn):
    pass


class TagIn(Body):
    tag: TagText


class TagTicketIn(KeyIn, TagIn, AutomationIn):
    pass


class CommentIn(Body):
    body: Text
    internal: bool = False


class AddCommentIn(KeyIn, CommentIn):
    pass


class RelationIn(Body):
    relation: RelationKind
    target: TicketKey


class RelateIn(KeyIn, RelationIn):
    pass


class RatingIn(Body):
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, Field(max_length=2_000)] | None = None


class RateIn(KeyIn, RatingIn):
    pass


class BulkIn(Body):
    keys: list[TicketKey] = Field(min_length=1, max_length=MAX_BULK_KEYS)
    op: Literal["assign", "close"]
    assignee_id: UserId | None = None

    @model_validator(mode="after")
    def _assign_names_the_assignee(self) -> BulkIn:
        if self.op == "assign" and self.assignee_id is None:
            raise ValueError("op 'assign' needs an assignee_id")
        return self

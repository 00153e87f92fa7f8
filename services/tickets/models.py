"""Request bodies of the tickets RPC methods: strict pydantic models (unknown keys refused)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

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
from libs.events.errors import ServiceError
from services.tickets.fields import MAX_FIELDS, FieldSpec

TICKET_KEY = r"^[A-Z][A-Z0-9]{0,9}-[1-9][0-9]{0,8}$"
TYPE_KEY = r"^[a-z][a-z0-9_]{0,39}$"

Key = Annotated[str, Field(min_length=1, max_length=40)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def refuse_nul(body: dict[str, Any]) -> None:
    """Refuse a NUL character anywhere in a body: Postgres can store none in text or jsonb."""
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and "\x00" in item:
            raise ServiceError(
                422, "VALIDATION_ERROR", "the request body is not valid", {"body": "contains NUL"}
            )


class Empty(Body):
    pass


class TypeGet(Body):
    key: Key
    version: int | None = Field(default=None, ge=1)


class TypeCreate(Body):
    key: str = Field(pattern=TYPE_KEY)
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    fields: list[FieldSpec] = Field(default_factory=list, max_length=MAX_FIELDS)


class TypeUpdate(Body):
    key: Key
    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    fields: list[FieldSpec] = Field(max_length=MAX_FIELDS)


class TicketCreate(Body):
    type: Key
    title: Title
    description: Annotated[str, Field(max_length=20_000)] | None = None
    priority: TicketPriority | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class KeyBody(Body):
    key: Key


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


class TicketGet(KeyBody):
    as_of: Annotated[AwareDatetime, AfterValidator(_in_utc)] | None = None


class Filters(Body):
    status: TicketStatus | None = None
    type: Short | None = None
    priority: TicketPriority | None = None
    assignee: Short | None = None
    tag: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    q: Short | None = None


class ListQuery(Filters):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, Field(max_length=500)] | None = None


class StatusChange(KeyBody):
    status: TicketStatus


class AssignBody(KeyBody):
    assignee_id: UserId


class PriorityBody(KeyBody):
    priority: TicketPriority


class TagBody(KeyBody):
    tag: Annotated[str, Field(min_length=1, max_length=50)]


class CommentBody(KeyBody):
    body: Text
    internal: bool = False


class RelateBody(KeyBody):
    relation: RelationKind
    target: str = Field(pattern=TICKET_KEY)


class RateBody(KeyBody):
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, Field(max_length=2_000)] | None = None


class BulkBody(Body):
    keys: list[Key] = Field(min_length=1, max_length=200)
    op: Literal["assign", "close"]
    assignee_id: UserId | None = None

    @model_validator(mode="after")
    def _assign_names_the_assignee(self) -> BulkBody:
        if self.op == "assign" and self.assignee_id is None:
            raise ValueError("op 'assign' needs an assignee_id")
        return self

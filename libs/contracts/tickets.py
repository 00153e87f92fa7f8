"""The tickets service's contract: every RPC method it answers, with its request and answer models.

The tickets service registers a handler per `Method` (`serve`); the gateway calls them (`ask`) and
uses the same models as its HTTP bodies and answers, so one definition is checked on both sides.
The models live in `ticket_requests` (with the bounds on every input) and `ticket_answers`;
they are re-exported here, so `contract.TicketIn` names the one definition. Statuses,
priorities and relation kinds are the event catalog's.
"""

from __future__ import annotations

from libs.contracts.ticket_answers import (
    AuditEvent,
    AuditPage,
    BulkError,
    BulkOnTheWire,
    BulkOut,
    BulkResult,
    CommentOut,
    CommentPage,
    CsvExport,
    FieldOut,
    PendingApproval,
    Rating,
    Relation,
    TicketOut,
    TicketPage,
    TicketTypeOut,
    TicketTypePage,
)
from libs.contracts.ticket_requests import (
    MAX_BULK_KEYS,
    MAX_EXPORT_PAGE,
    MAX_FIELDS,
    MAX_FIELDS_BYTES,
    MAX_PAGE,
    MAX_TEXT,
    TICKET_KEY,
    TYPE_KEY,
    AddCommentIn,
    AssignIn,
    AssignTicketIn,
    Body,
    BulkIn,
    ChangeStatusIn,
    CommentIn,
    CommentsIn,
    EventsIn,
    ExportIn,
    Filters,
    GetIn,
    KeyIn,
    ListIn,
    NoBody,
    PriorityIn,
    RateIn,
    RatingIn,
    RelateIn,
    RelationIn,
    ReviseTypeIn,
    SetPriorityIn,
    StatusIn,
    TagIn,
    TagTicketIn,
    TicketIn,
    TicketTypeIn,
    TicketTypeUpdate,
    TypeGetIn,
    TypesListIn,
)
from libs.events.contract import Method

__all__ = [
    "MAX_BULK_KEYS", "MAX_EXPORT_PAGE", "MAX_FIELDS", "MAX_FIELDS_BYTES", "MAX_PAGE", "MAX_TEXT",
    "TICKET_KEY", "TYPE_KEY", "AddCommentIn", "AssignIn", "AssignTicketIn", "AuditEvent",
    "AuditPage", "Body", "BulkError", "BulkIn", "BulkOut", "BulkResult", "ChangeStatusIn",
    "CommentIn", "CommentOut", "CommentPage", "CommentsIn", "CsvExport", "EventsIn", "ExportIn",
    "FieldOut", "Filters", "GetIn", "KeyIn", "ListIn", "NoBody", "PendingApproval", "PriorityIn",
    "RateIn", "Rating", "RatingIn", "RelateIn", "Relation", "RelationIn", "ReviseTypeIn",
    "SetPriorityIn", "StatusIn", "TagIn", "TagTicketIn", "TicketIn", "TicketOut", "TicketPage",
    "TicketTypeIn", "TicketTypeOut", "TicketTypePage", "TicketTypeUpdate", "TypeGetIn",
    "TypesListIn",
]  # fmt: skip

# methods: `ns.rpc.tickets.<name>`

TYPES_LIST: Method[TypesListIn, TicketTypePage] = Method(
    "tickets", "types.list", TypesListIn, TicketTypePage
)
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
EXPORT: Method[ExportIn, CsvExport] = Method("tickets", "tickets.export", ExportIn, CsvExport)
"""One page of the CSV export; the gateway streams the pages one reply at a time."""
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
COMMENTS: Method[CommentsIn, CommentPage] = Method(
    "tickets", "tickets.comments", CommentsIn, CommentPage
)
RELATE: Method[RelateIn, TicketOut] = Method("tickets", "tickets.relate", RelateIn, TicketOut)
RATE: Method[RateIn, TicketOut] = Method("tickets", "tickets.rate", RateIn, TicketOut)
BULK: Method[BulkIn, BulkOut] = Method("tickets", "tickets.bulk", BulkIn, BulkOnTheWire)
EVENTS: Method[EventsIn, AuditPage] = Method("tickets", "tickets.events", EventsIn, AuditPage)

"""The tickets service's RPC edge: the one table from refusal codes to HTTP statuses, and the
wrapper every method's handler runs in (the `input_problem` check, refusals turned into
ServiceError)."""

from __future__ import annotations

from typing import Final

from libs.events.errors import ServiceError
from libs.events.refusal_edge import refusal_edge
from services.tickets.refusals import Refusal, RefusalCode

STATUS: Final[dict[RefusalCode, int]] = {
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "INVALID_TRANSITION": 409,
    "PENDING_APPROVAL": 409,
    "NOT_RESOLVED": 409,
    "ALREADY_RATED": 409,
    "TYPE_EXISTS": 409,
    "CONCURRENT_CHANGE": 409,
    "UNKNOWN_TYPE": 422,
    "INVALID_FIELDS": 422,
    "INVALID_ASSIGNEE": 422,
    "INVALID_TAG": 422,
    "TOO_MANY_TAGS": 422,
    "INVALID_RELATION": 422,
    "TOO_MANY_RELATIONS": 422,
    "INVALID_CURSOR": 422,
    "VALIDATION_ERROR": 422,
}
"""The status each refusal is answered with (tests/unit/test_ticket_refusals.py: every code)."""


def as_service_error(refusal: Refusal) -> ServiceError:
    return ServiceError(STATUS[refusal.code], refusal.code, refusal.message, refusal.details)


edge = refusal_edge(Refusal, as_service_error)
"""Wraps each method (libs/events/refusal_edge.py): bad bodies refused, refusals as ServiceError."""

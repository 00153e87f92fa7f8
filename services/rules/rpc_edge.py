"""The rules service's RPC edge: the one table from refusal codes to HTTP statuses, and the
wrapper every method's handler runs in (the `input_problem` check, refusals turned into
ServiceError)."""

from __future__ import annotations

from typing import Final

from libs.events.errors import ServiceError
from libs.events.refusal_edge import refusal_edge
from services.rules.refusals import InvalidRule, Refusal, RefusalCode

STATUS: Final[dict[RefusalCode, int]] = {
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "RULE_EXISTS": 409,
    "RULE_ARCHIVED": 409,
    "CONCURRENT_CHANGE": 409,
    "INVALID_RULE": 422,
    "INVALID_CURSOR": 422,
    "VALIDATION_ERROR": 422,
}
"""The status each refusal is answered with (tests/rules/test_service_rules.py: every code)."""


def as_service_error(refusal: Refusal) -> ServiceError:
    details = refusal.details
    if isinstance(refusal, InvalidRule):
        details = [error.model_dump() for error in refusal.errors]
    return ServiceError(STATUS[refusal.code], refusal.code, refusal.message, details)


edge = refusal_edge(Refusal, as_service_error)
"""Wraps each method (libs/events/refusal_edge.py): bad bodies refused, refusals as ServiceError."""

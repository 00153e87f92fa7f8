"""The executor's RPC edge: the one table from refusal codes to HTTP statuses, and the wrapper
every method's handler runs in (the `input_problem` check, refusals turned into ServiceError)."""

from __future__ import annotations

from typing import Final

from libs.events.errors import ServiceError
from libs.events.refusal_edge import refusal_edge
from services.executor.refusals import Refusal, RefusalCode

STATUS: Final[dict[RefusalCode, int]] = {
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "NOT_DEAD_LETTERED": 409,
    "CONCURRENT_CHANGE": 409,
    "INVALID_CURSOR": 422,
    "VALIDATION_ERROR": 422,
    "NOT_A_SUBSCRIPTION": 409,
    "INVALID_POSITION": 422,
}
"""The status each refusal is answered with (tests/executor/test_api.py: every code)."""


def as_service_error(refusal: Refusal) -> ServiceError:
    return ServiceError(STATUS[refusal.code], refusal.code, refusal.message, refusal.details)


edge = refusal_edge(Refusal, as_service_error)
"""Wraps each method (libs/events/refusal_edge.py): bad bodies refused, refusals as ServiceError."""

"""The tickets service's RPC edge: the one table from refusal codes to HTTP statuses, and the
wrapper every method's handler runs in (the `input_problem` check, refusals turned into
ServiceError)."""

from __future__ import annotations

from typing import Any, Final

from libs.events.bus import RpcHandler, RpcRequest
from libs.events.errors import ServiceError
from libs.events.inputs import input_problem
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


def refuse_unstorable(body: dict[str, Any]) -> None:
    """Refuse a NUL character, a lone surrogate or too deep nesting anywhere in a body, whoever
    sent it: none of them can be stored or sent on."""
    problem = input_problem(body)
    if problem is not None:
        raise Refusal("VALIDATION_ERROR", "the request body is not valid", {"body": problem})


def edge(handler: RpcHandler) -> RpcHandler:
    """`handler` as the RPC server runs it: a refusal leaves as the ServiceError of its code."""

    async def answer(request: RpcRequest) -> Any:
        try:
            refuse_unstorable(request.body)
            return await handler(request)
        except Refusal as refusal:
            raise as_service_error(refusal) from None

    return answer

"""The rules service's RPC edge: the one table from refusal codes to HTTP statuses, and the
wrapper every method's handler runs in (the `input_problem` check, refusals turned into
ServiceError)."""

from __future__ import annotations

from typing import Any, Final

from libs.events.bus import RpcHandler, RpcRequest
from libs.events.errors import ServiceError
from libs.events.inputs import input_problem
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


def edge(handler: RpcHandler) -> RpcHandler:
    """`handler` as the RPC server runs it: a body that cannot be stored (a NUL, a lone
    surrogate, too deep) is refused first; a refusal leaves as the ServiceError of its code."""

    async def answer(request: RpcRequest) -> Any:
        try:
            problem = input_problem(request.body)
            if problem is not None:
                raise Refusal(
                    "VALIDATION_ERROR", "the request body is not valid", {"body": problem}
                )
            return await handler(request)
        except Refusal as refusal:
            raise as_service_error(refusal) from None

    return answer

"""The executor's RPC edge: the one table from refusal codes to HTTP statuses, and the wrapper
every method's handler runs in (the `input_problem` check, refusals turned into ServiceError)."""

from __future__ import annotations

from typing import Any, Final

from libs.events.bus import RpcHandler, RpcRequest
from libs.events.errors import ServiceError
from libs.events.inputs import input_problem
from services.executor.refusals import Refusal, RefusalCode

STATUS: Final[dict[RefusalCode, int]] = {
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "NOT_DEAD_LETTERED": 409,
    "CONCURRENT_CHANGE": 409,
    "INVALID_CURSOR": 422,
    "VALIDATION_ERROR": 422,
}
"""The status each refusal is answered with (tests/executor/test_api.py: every code)."""


def as_service_error(refusal: Refusal) -> ServiceError:
    return ServiceError(STATUS[refusal.code], refusal.code, refusal.message, refusal.details)


def edge(handler: RpcHandler) -> RpcHandler:
    """`handler` as the RPC server runs it: a refusal leaves as the ServiceError of its code."""

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

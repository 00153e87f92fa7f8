"""The wrapper every RPC method of a service runs in: a body that cannot be stored or sent on
(a NUL, a lone surrogate, too deep nesting) is refused first, as VALIDATION_ERROR, whoever sent
it; a domain refusal leaves as the ServiceError the service's own table makes of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from libs.events.bus import RpcHandler, RpcRequest
from libs.events.errors import ServiceError
from libs.events.inputs import input_problem
from libs.events.refusal import DomainRefusal

R = TypeVar("R", bound=DomainRefusal[Any])


def refusal_edge(
    refusal: type[R], as_error: Callable[[R], ServiceError]
) -> Callable[[RpcHandler], RpcHandler]:
    """The `edge` decorator of a service whose refusals are `refusal`s."""

    def edge(handler: RpcHandler) -> RpcHandler:
        async def answer(request: RpcRequest) -> Any:
            try:
                problem = input_problem(request.body)
                if problem is not None:
                    raise refusal(
                        "VALIDATION_ERROR", "the request body is not valid", {"body": problem}
                    )
                return await handler(request)
            except refusal as refused:
                raise as_error(refused) from None

        return answer

    return edge

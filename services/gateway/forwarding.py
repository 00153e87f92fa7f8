"""How a gateway route hands a request to the owning service: the RPC request built (and refused
as the service would refuse it) from the path, query and body, sent as the caller, and the query
parameters every list route shares."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, ValidationError

from libs.events.contract import Method
from libs.events.errors import ServiceError
from services.gateway.auth import Principal
from services.gateway.deps import DepsDep
from services.gateway.people.calls import query

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")

Short = Annotated[str | None, Query(max_length=200)]
Cursor = Annotated[
    str | None, Query(max_length=500, description="next_cursor of the previous page")
]


async def ask_as(
    deps: DepsDep, request: Request, who: Principal, method: Method[In, Out], body: In
) -> Out:
    """Call `method` of its service as `who`, within the request's correlation id."""
    correlation_id = request.headers.get("x-correlation-id")
    return await query(deps, method, body, who=who, correlation_id=correlation_id)


def request_of(model: type[In], **values: Any) -> In:
    """The RPC request from the path, query and body; refused as the service would refuse it."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ServiceError.from_validation(exc) from None

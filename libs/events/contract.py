"""Typed request/reply contracts between the gateway and a service, written once.

A service's contract module (`libs/contracts/<service>.py`) declares each method it answers as a
`Method[Request, Response]`: its name, and the pydantic types of its body and of its answer.
The service registers a handler per method with `serve(...)`; the gateway calls it with
`rpc.ask(METHOD, body, ...)` and gets the response type back, so mypy sees a renamed field on
both sides, and a reply that does not match the contract fails loudly at the edge.

A list answers one page that always fits one bus reply: `fit_page` keeps the items that fit the
connection's `reply_budget`, and the rest come on the next page (its cursor).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

from libs.events.bus import RpcClient, RpcHandler, RpcRequest
from libs.events.envelope import Actor

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")
Item = TypeVar("Item")


def fit_page(items: Sequence[Item], *, budget: int) -> list[Item]:
    """The leading `items` (models or JSON-able values) whose JSON adds up to at most `budget`
    bytes, and always the first (a page is never empty while items remain; every stored item
    is bounded well below a reply, so one alone fits). The next page starts after the last."""
    kept: list[Item] = []
    used = 0
    for item in items:
        used += len(to_json(item))
        if kept and used > budget:
            break
        kept.append(item)
    return kept


@dataclass(frozen=True)
class Method(Generic[In, Out]):
    """One request/reply method of a service: `ns.rpc.<service>.<name>`."""

    service: str
    name: str
    request: type[In]
    response: Any
    """The answer's type (a model, `list[Model]`, ...), as a TypeAdapter understands it."""
    _adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_adapter", TypeAdapter(self.response))

    def dump(self, result: Out) -> Any:
        """The answer as JSON-able data, checked against the contract."""
        return self._adapter.dump_python(self._adapter.validate_python(result), mode="json")

    def load(self, data: Any) -> Out:
        loaded: Out = self._adapter.validate_python(data)
        return loaded


def serve(
    method: Method[In, Out], handler: Callable[[RpcRequest, In], Awaitable[Out]]
) -> tuple[str, RpcHandler]:
    """(name, RPC handler) for a service's method table: parses the body into the request type
    (a ValidationError becomes a 422 at the RPC edge) and dumps the answer by the contract."""

    async def answer(request: RpcRequest) -> Any:
        body = method.request.model_validate(request.body)
        return method.dump(await handler(request, body))

    return method.name, answer


async def ask(
    rpc: RpcClient,
    method: Method[In, Out],
    body: In,
    *,
    actor: Actor,
    role: str | None = None,
    on_behalf_of: str | None = None,
    correlation_id: str | None = None,
    timeout: float | None = None,
) -> Out:
    """Call `method` on its service's queue group; the answer comes back as the contract's type."""
    result = await rpc.call(
        method.service,
        method.name,
        body.model_dump(mode="json"),
        actor=actor,
        role=role,
        on_behalf_of=on_behalf_of,
        correlation_id=correlation_id,
        timeout=timeout,
    )
    return method.load(result)

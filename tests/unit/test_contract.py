"""A typed contract checks both ends: the request body is parsed into its model, the answer is
dumped by the contract and loaded back as its type, and an answer that breaks it fails loudly."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from libs.events.bus import RpcRequest
from libs.events.contract import Method, serve
from libs.events.envelope import Actor


class Lookup(BaseModel):
    key: str


class Found(BaseModel):
    key: str
    count: int


FIND: Method[Lookup, list[Found]] = Method("things", "find", Lookup, list[Found])


async def test_serve_parses_the_body_and_dumps_the_answer_by_the_contract() -> None:
    async def find(_: RpcRequest, body: Lookup) -> list[Found]:
        return [Found(key=body.key, count=2)]

    name, handler = serve(FIND, find)
    assert name == "find"
    answer = await handler(RpcRequest(actor=Actor.system(), body={"key": "OPS-1"}))
    assert answer == [{"key": "OPS-1", "count": 2}]
    assert FIND.load(answer) == [Found(key="OPS-1", count=2)]


async def test_a_body_or_an_answer_outside_the_contract_is_refused() -> None:
    async def broken(_: RpcRequest, body: Lookup) -> list[Found]:
        return [{"key": body.key}]  # type: ignore[list-item]  # what mypy would catch

    _, handler = serve(FIND, broken)
    with pytest.raises(ValidationError):
        await handler(RpcRequest(actor=Actor.system(), body={"nokey": 1}))
    with pytest.raises(ValidationError):
        await handler(RpcRequest(actor=Actor.system(), body={"key": "OPS-1"}))

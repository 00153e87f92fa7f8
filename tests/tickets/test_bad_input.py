"""Bad input is always a 4xx answer, never an internal error."""

from __future__ import annotations

from typing import Any

import pytest

from libs.events.errors import ServiceError
from tests.tickets.support import ADMIN, ALICE, OPERATOR, Desk

METHODS = [
    "types.list", "types.get", "types.create", "types.update", "tickets.create", "tickets.get",
    "tickets.list", "tickets.export", "tickets.change_status", "tickets.assign",
    "tickets.set_priority", "tickets.add_tag", "tickets.remove_tag", "tickets.comment",
    "tickets.comments", "tickets.relate", "tickets.rate", "tickets.bulk", "tickets.events",
]  # fmt: skip

GARBAGE: list[dict[str, Any]] = [
    {},
    {"key": None},
    {"key": 7, "status": ["open"]},
    {"key": "OPS-1" * 100},
    {"key": "OPS-1", "tag": "a\x00b", "body": "nul\x00", "status": "open\x00"},
    {"key": "OPS-1", "as_of": "0001-01-01T00:00:00+01:00"},
    {"key": "OPS-1", "as_of": "9999-12-31T23:59:59-14:00"},
    {"q": "\x00", "cursor": "%%%", "limit": 10**20},
    {"keys": ["OPS-1"] * 500, "op": "close"},
    {"type": "incident", "title": "t", "fields": {"service": "a\x00"}},
    {"type": "incident", "title": "t\x00", "fields": {"service": "api", "x\x00": 1}},
    {"key": "OPS-1", "body": "nul\x00"},
    {"key": "OPS-1", "tag": "\x00"},
    {"type": "incident", "title": "t", "fields": {"service": "api", "impact": "x" * 20_000}},
    {"key": "t_nan", "name": "n", "fields": [{"key": "a", "label": "A", "type": "number",
     "shown_when": {"field": "fields.b", "op": "eq", "value": float("inf")}}]},
]  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
async def test_garbage_bodies_are_refused_with_a_4xx(desk: Desk, method: str) -> None:
    await desk.open()
    for body in GARBAGE:
        for who in (ADMIN, OPERATOR, ALICE):
            try:
                await desk.call(method, body, by=who)
            except ServiceError as exc:
                assert 400 <= exc.status < 500, (method, body, exc.status, exc.message)

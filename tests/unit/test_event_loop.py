"""Service processes run on uvloop, unless OPSLEDGER_EVENT_LOOP=asyncio asks for asyncio's loop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from libs.events import cli, event_loop


async def _loop_kind() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_a_service_process_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.CHOICE_VARIABLE, raising=False)
    seen: list[type[asyncio.AbstractEventLoop]] = []

    async def service(stop: asyncio.Event) -> None:  # what `opsledger run` and `dev` run
        seen.append(await _loop_kind())

    cli._run(service)
    assert seen == [uvloop.Loop]


def test_asyncio_loop_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.CHOICE_VARIABLE, " AsyncIO ")
    kind = event_loop.run(_loop_kind())
    assert kind is not uvloop.Loop
    assert issubclass(kind, asyncio.BaseEventLoop)


def test_the_coroutine_s_result_and_errors_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.CHOICE_VARIABLE, raising=False)

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        raise LookupError("nope")

    assert event_loop.run(answer()) == 42
    with pytest.raises(LookupError, match="nope"):
        event_loop.run(fail())

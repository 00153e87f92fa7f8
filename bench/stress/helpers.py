"""Small helpers the harness and the workers share: stoppable sleeps, exception names."""

from __future__ import annotations

import asyncio
import contextlib
import time


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`; False (at once) if `stop` is set first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    return not stop.is_set()


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


def describe(exc: BaseException) -> str:
    return type(exc).__name__

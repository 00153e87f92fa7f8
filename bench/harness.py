"""Closed-loop concurrent writers: N tasks repeat one operation; events per second after warm-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

Op = Callable[[], Awaitable[int]]
"""One operation of one writer; returns how many events (rows) it wrote."""


async def rate(writers: list[Op], *, seconds: float, warmup: float) -> float:
    """Run every writer in a loop for `warmup + seconds`; events/s counted after the warm-up."""
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + seconds
    counted = [0] * len(writers)

    async def loop(index: int, op: Op) -> None:
        while True:
            written = await op()
            now = time.perf_counter()
            if now >= end:
                return
            if now >= measure_from:
                counted[index] += written

    await asyncio.gather(*(loop(i, op) for i, op in enumerate(writers)))
    return sum(counted) / seconds


async def paced(
    fire: Callable[[int], Coroutine[Any, Any, None]], *, rate: float, seconds: float
) -> None:
    """Start `fire(i)` every 1/rate s for `seconds` (open loop: a slow call never delays the next
    one) and wait for all of them."""
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i in range(round(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)


async def settle(done: Callable[[], bool], *, timeout: float, interval: float = 0.01) -> bool:
    """Wait until `done()` holds (True) or `timeout` passes (False)."""
    deadline = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(interval)
    return True

"""Sleeping until a deadline, a wake-up or a stop, whichever comes first (relay, timers)."""

from __future__ import annotations

import asyncio


async def sleep_until_woken(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    stopping = asyncio.create_task(stop.wait())
    woken = asyncio.create_task(wake.wait())
    try:
        await asyncio.wait({stopping, woken}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        woken.cancel()

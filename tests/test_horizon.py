"""Our own sessions cannot hold the read horizon forever, and the relay backs off while it is
held by someone else."""

from __future__ import annotations

import asyncio
import itertools
import time

import asyncpg
import pytest

from libs.events.db import connect, create_pool
from libs.events.relay import HELD_BACK_MAX_S, HeldBack


async def test_our_sessions_left_idle_in_a_transaction_are_ended(database_url: str) -> None:
    conn = await connect(database_url, idle_in_transaction_timeout_s=0.3)
    try:
        await conn.execute("BEGIN")
        await conn.fetchval("SELECT pg_current_xact_id()")
        await asyncio.sleep(1.0)  # a forgotten transaction
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SHOW idle_in_transaction_session_timeout") == "1min"
    finally:
        await pool.close()


async def test_the_relay_looks_again_less_often_the_longer_the_horizon_is_held() -> None:
    """A moment's hold (a commit in flight) is looked at again every 2 ms; a long one less and
    less often, up to HELD_BACK_MAX_S."""
    held = HeldBack()
    stop = asyncio.Event()
    stop.set()  # no real waiting in this test
    await held.wait(conn=None, stop=stop, wake=asyncio.Event())  # type: ignore[arg-type]  # not held for 1 s yet
    assert held.delay == 0.002
    held.since = time.monotonic() - 0.5  # held for half a second now
    delays = []
    for _ in range(10):
        await held.wait(conn=None, stop=stop, wake=asyncio.Event())  # type: ignore[arg-type]
        delays.append(held.delay)
    assert delays[0] > 0.002
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == HELD_BACK_MAX_S
    held.clear()
    await held.wait(conn=None, stop=stop, wake=asyncio.Event())  # type: ignore[arg-type]
    assert held.delay == 0.002

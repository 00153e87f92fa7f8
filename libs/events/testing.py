"""Test helpers: a throwaway database and namespace per test on real Postgres and NATS, and
waiting for asynchronous outcomes without fixed sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
import nats
from nats.js.errors import NotFoundError

from libs.events.db import with_database
from libs.events.runtime import Service
from libs.events.settings import Settings
from libs.events.system import System

T = TypeVar("T")


def isolated_system(
    settings: Settings,
    database_url: str,
    nats_url: str,
    *,
    services: Sequence[Service],
    replica: str = "r1",
    relay: bool = True,
    timers: bool = False,
) -> System:
    """One replica of a test deployment: `services` on this database and namespace, with its own
    data dir under settings.data_dir (replicas of one deployment share the rest)."""
    own = settings.model_copy(
        update={"database_url": database_url, "data_dir": settings.data_dir / replica}
    )
    return System(
        settings=own,
        database_url=database_url,
        nats_url=nats_url,
        services=services,
        relay=relay,
        timers=timers,
        name=replica,
    )


def unique_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(5)}"


@contextlib.asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """Create an empty database for one test run and drop it afterwards."""
    name = unique_name("ol_test_")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def delete_namespace_streams(nats_url: str, stream_name: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(stream_name)
    finally:
        await nc.close()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Call `probe` until `until(result)` holds; fail with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s; last result: {result!r}")
        await asyncio.sleep(interval)

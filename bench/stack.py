"""The system under a bench: its services in the bench's own process (`in_process`), or each as
its own `opsledger run SERVICE` process (`as_processes`), as Compose runs them, so the services
use every core and the bench's client is not sharing one with them. Either way the bench gets
the gateway's base URL and a pool on the system's database, to read what the services wrote."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import httpx
from pydantic import SecretStr

from libs.events.db import create_pool
from libs.events.devstack import stop_children
from libs.events.embedded import free_port
from libs.events.http_serving import serve_http
from libs.events.runtime import Service
from libs.events.settings import Settings
from libs.events.system import System
from services.gateway.app import SERVICE as GATEWAY
from services.gateway.app import create_app

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Stack:
    base_url: str
    pool: asyncpg.Pool
    shape: str
    """How the services ran, for the report."""


@contextlib.asynccontextmanager
async def in_process(
    settings: Settings, database_url: str, nats_url: str, services: Sequence[Service]
) -> AsyncIterator[Stack]:
    system = System(
        settings=settings, database_url=database_url, nats_url=nats_url, services=list(services)
    )
    async with system as deps:
        server, serving = await serve_http(create_app(deps), host="127.0.0.1", port=free_port())
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Stack(f"http://127.0.0.1:{port}", deps.pool, "one process")
        finally:
            server.should_exit = True
            await serving


def child_env(settings: Settings, database_url: str, nats_url: str, port: int) -> dict[str, str]:
    """The environment of a service process: this bench's servers, namespace and settings."""
    env = {**os.environ}
    for name, value in settings.model_dump(mode="json").items():
        if value is None or name in {"rate_limits"}:
            continue
        field = getattr(settings, name)
        if isinstance(field, SecretStr):  # dumped as asterisks
            value = field.get_secret_value()
        env[f"OPSLEDGER_{name.upper()}"] = str(value)
    env["OPSLEDGER_RATE_LIMITS"] = ",".join(
        f"{key}={hits}/{window}" for key, (hits, window) in settings.rate_limits.items()
    )
    env.update(
        OPSLEDGER_DATABASE_URL=database_url,
        OPSLEDGER_NATS_URL=nats_url,
        OPSLEDGER_HOST="127.0.0.1",
        OPSLEDGER_PORT=str(port),
    )
    return env


@contextlib.asynccontextmanager
async def as_processes(
    settings: Settings, database_url: str, nats_url: str, services: Sequence[Service]
) -> AsyncIterator[Stack]:
    port = free_port()
    env = child_env(settings, database_url, nats_url, port)
    children: list[asyncio.subprocess.Process] = []
    pool = await create_pool(database_url, min_size=2, max_size=8)
    try:
        # the gateway first: it prepares the shared schema before the others race for it
        ordered = sorted(services, key=lambda s: s.name != GATEWAY.name)
        for service in ordered:
            children.append(
                await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "libs.events.cli", "run", service.name),
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        base = f"http://127.0.0.1:{port}"
        await _until_ready(base, children)
        yield Stack(base, pool, f"{len(children)} processes, one per service")
    finally:
        await stop_children(children)
        await pool.close()


async def _until_ready(base: str, children: Sequence[asyncio.subprocess.Process]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            dead = [p.pid for p in children if p.returncode is not None]
            if dead:
                raise RuntimeError(f"service processes {dead} exited while starting")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the gateway at {base} was not ready within {READY_TIMEOUT_S:.0f} s")

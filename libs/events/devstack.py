"""Starting a deployment in this process: embedded servers when no URL is configured, the system,
and the gateway's HTTP server. Ctrl-C (SIGINT) or SIGTERM stops everything it started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import click
import uvicorn

from libs.events.embedded import EmbeddedNats, EmbeddedPostgres
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.system import System, close_deps, open_deps, prepare
from libs.events.testing import with_database

log = logging.getLogger(__name__)

DEV_DATABASE = "opsledger"


async def ensure_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def resolve_servers(settings: Settings, stack: AsyncExitStack) -> Settings:
    """Settings with both URLs set, starting embedded servers under data_dir for missing ones."""
    database_url, nats_url = settings.database_url, settings.nats_url
    if database_url is None:
        pg = EmbeddedPostgres(settings.data_dir)
        stack.push_async_callback(pg.stop)
        click.echo("starting embedded Postgres ...")
        database_url = await ensure_database(await pg.start(), DEV_DATABASE)
    if nats_url is None:
        ns = EmbeddedNats(settings.data_dir)
        stack.push_async_callback(ns.stop)
        click.echo("starting embedded NATS ...")
        nats_url = await ns.start()
    return settings.model_copy(update={"database_url": database_url, "nats_url": nats_url})


async def run_dev(settings: Settings, services: Sequence[Service], stop: asyncio.Event) -> None:
    for service in services:
        if service.preflight is not None:
            service.preflight(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        resolved = await resolve_servers(settings, stack)
        await run_services(resolved, services, stop, relay=True, timers=True)


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: our loop owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:
        return None


async def serve_http(app: Any, *, host: str, port: int) -> tuple[QuietServer, asyncio.Task[None]]:
    """Start serving `app` in this loop; returns once it listens (or raises why it could not)."""
    server = QuietServer(
        uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off", access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    # uvicorn exposes no "started" event to wait on
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if serving.done():
        serving.result()
        raise RuntimeError(f"the HTTP server did not start on {host}:{port}")
    return server, serving


async def run_services(
    settings: Settings,
    services: Sequence[Service],
    stop: asyncio.Event,
    *,
    relay: bool,
    timers: bool,
) -> None:
    assert settings.database_url and settings.nats_url
    for service in services:
        if service.preflight is not None:
            service.preflight(settings)
    system = System(
        settings=settings,
        database_url=settings.database_url,
        nats_url=settings.nats_url,
        services=services,
        relay=relay,
        timers=timers,
        name="+".join(s.name for s in services),
    )
    deps = await system.start()
    server: QuietServer | None = None
    serving: asyncio.Task[None] | None = None
    try:
        http = [s.http for s in services if s.http is not None]
        if http:
            server, serving = await serve_http(
                http[0](deps), host=settings.host, port=settings.port
            )
            click.echo(f"OpsLedger is running at http://{settings.host}:{settings.port}/")
        click.echo(f"running: {', '.join(s.name for s in services)} (Ctrl-C stops)")
        await stop.wait()
        click.echo("stopping ...")
    finally:
        if server is not None and serving is not None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await serving
        await system.stop()


async def with_deps(
    settings: Settings, services: Sequence[Service], main: Callable[[Deps], Awaitable[Any]]
) -> Any:
    """Open the pool and the bus (embedded servers if needed), migrate, run `main`, close."""
    async with AsyncExitStack() as stack:
        resolved = await resolve_servers(settings, stack)
        assert resolved.database_url and resolved.nats_url
        deps = await open_deps(
            resolved, database_url=resolved.database_url, nats_url=resolved.nats_url, name="cli"
        )
        try:
            await prepare(deps, services)
            return await main(deps)
        finally:
            await close_deps(deps)

"""Starting a deployment in this process: embedded servers when no URL is configured, the system,
and the gateway's HTTP server. Ctrl-C (SIGINT) or SIGTERM stops everything it started.

`opsledger dev` records its servers and its pid in ``data_dir/dev-stack.json`` while it runs.
Other commands on the same data dir (`parked`, `replay`, `migrate`, `run`) use those servers
instead of starting their own, and dev stops, exiting non-zero, if one of its embedded servers
dies under it. `dev --processes` runs each service as its own `opsledger run SERVICE` child."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import asyncpg
import click

from libs.events.db import with_database
from libs.events.dev_stack_record import (
    DevStack,
    forget_stack,
    record_stack,
    running_stack,
    stack_path,
)
from libs.events.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedServerError,
    process_start_time,
)
from libs.events.http_serving import (
    CannotListen,
    QuietServer,
    http_url,
    listen,
    serve_http,
    serve_metrics,
)
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.system import System, close_deps, open_deps, prepare

log = logging.getLogger(__name__)

__all__ = [
    "CannotListen",
    "DevStack",
    "ServerLost",
    "listen",
    "run_dev",
    "run_processes",
    "run_services",
    "running_stack",
    "serve_http",
    "serve_metrics",
    "stack_path",
    "stop_children",
    "use_running_stack",
    "with_deps",
]

DEV_DATABASE = "opsledger"
WATCH_INTERVAL_S = 0.5


class ServerLost(click.ClickException):
    """An embedded server that dev started (or, with --processes, a service's process) died
    under it: dev stops, exiting 1, rather than limp on."""


def _note(message: str) -> None:
    """Progress for the person at the terminal, on stderr (stdout is for a command's answer)."""
    click.echo(message, err=True)


# --- servers ---------------------------------------------------------------------------------


async def ensure_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


@dataclass(frozen=True)
class _Started:
    """An embedded server this process started, to watch."""

    name: str
    server: EmbeddedNats | EmbeddedPostgres


async def _start_embedded(
    settings: Settings, stack: AsyncExitStack
) -> tuple[Settings, list[_Started]]:
    """Start an embedded server under data_dir for each URL that is not set."""
    database_url, nats_url = settings.database_url, settings.nats_url
    started: list[_Started] = []
    try:
        if database_url is None:
            pg = EmbeddedPostgres(settings.data_dir)
            stack.push_async_callback(pg.stop)
            _note("starting embedded Postgres ...")
            database_url = await ensure_database(await pg.start(), DEV_DATABASE)
            started.append(_Started("Postgres", pg))
        if nats_url is None:
            ns = EmbeddedNats(settings.data_dir)
            stack.push_async_callback(ns.stop)
            _note("starting embedded NATS ...")
            nats_url = await ns.start()
            started.append(_Started("NATS", ns))
    except EmbeddedServerError as exc:
        raise click.ClickException(str(exc)) from None
    resolved = settings.model_copy(update={"database_url": database_url, "nats_url": nats_url})
    return resolved, started


def use_running_stack(settings: Settings) -> Settings:
    """Settings whose missing URLs are taken from the dev stack running on data_dir, if any."""
    if settings.database_url is not None and settings.nats_url is not None:
        return settings
    running = running_stack(settings.data_dir)
    if running is None:
        return settings
    update: dict[str, str] = {}
    if settings.database_url is None and running.database_url is not None:
        update["database_url"] = running.database_url
    if settings.nats_url is None and running.nats_url is not None:
        update["nats_url"] = running.nats_url
    if update:
        _note(f"using the servers of `opsledger dev` (pid {running.pid}) on {settings.data_dir}")
    return settings.model_copy(update=update)


async def resolve_servers(settings: Settings, stack: AsyncExitStack) -> Settings:
    """Settings with both URLs set: the configured ones, else those of the dev stack running on
    data_dir, else embedded servers started under data_dir (stopped by `stack`)."""
    resolved, _ = await _start_embedded(use_running_stack(settings), stack)
    return resolved


async def _watch(started: Sequence[_Started], stop: asyncio.Event) -> str | None:
    """Until `stop`: if a server dies, set `stop` and say which (None if none did)."""
    while not stop.is_set():
        for item in started:
            if not item.server.is_running():
                stop.set()
                return (
                    f"embedded {item.name} exited unexpectedly, so `opsledger dev` stopped "
                    f"(its log: {item.server.log_path}); start it again"
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
    return None


def _preflight(settings: Settings, services: Sequence[Service]) -> None:
    for service in services:
        if service.preflight is not None:
            service.preflight(settings)


async def run_dev(
    settings: Settings,
    services: Sequence[Service],
    stop: asyncio.Event,
    *,
    processes: bool = False,
) -> None:
    """Everything until `stop`: in this process, or with `processes` each service in its own
    `opsledger run SERVICE` child. ServerLost if an embedded server (or a child) dies."""
    other = running_stack(settings.data_dir)
    if other is not None:
        where = f" at {other.http_url}" if other.http_url else ""
        raise click.ClickException(
            f"`opsledger dev` (pid {other.pid}) is already running on {settings.data_dir}{where}; "
            "stop it first, or give this one another --data-dir"
        )
    # The port first: a busy one is reported before anything starts or writes.
    listener = listen(settings.host, settings.port) if any(s.http for s in services) else None
    async with AsyncExitStack() as stack:
        if listener is not None:
            stack.callback(listener.close)
        _preflight(settings, services)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        resolved, started = await _start_embedded(settings, stack)
        embedded = {type(item.server) for item in started}
        record_stack(
            settings.data_dir,
            DevStack(
                pid=os.getpid(),
                started=process_start_time(os.getpid()),
                database_url=resolved.database_url if EmbeddedPostgres in embedded else None,
                nats_url=resolved.nats_url if EmbeddedNats in embedded else None,
                http_url=http_url(settings.host, listener) if listener is not None else None,
            ),
        )
        stack.callback(forget_stack, settings.data_dir)
        watcher = asyncio.create_task(_watch(started, stop))
        failed: str | None = None
        try:
            if processes:
                failed = await run_processes(resolved, services, stop, listener=listener)
            else:
                await run_services(
                    resolved, services, stop, relay=True, timers=True, listener=listener
                )
        finally:
            stop.set()
            lost = await watcher
        if lost is not None or failed is not None:
            raise ServerLost(lost or failed or "")


CHILD_STOP_TIMEOUT_S = 30.0


async def run_processes(
    settings: Settings,
    services: Sequence[Service],
    stop: asyncio.Event,
    *,
    listener: socket.socket | None,
) -> str | None:
    """Each service as its own `opsledger run SERVICE` process on settings' servers, as Compose
    runs them, until `stop`. A process that exits before then stops the rest, and is reported
    (the return value) so dev exits non-zero rather than run on without it."""
    env = {
        **os.environ,
        "OPSLEDGER_DATABASE_URL": settings.database_url or "",
        "OPSLEDGER_NATS_URL": settings.nats_url or "",
        "OPSLEDGER_DATA_DIR": str(settings.data_dir),
        "OPSLEDGER_HOST": settings.host,
        "OPSLEDGER_PORT": str(listener.getsockname()[1] if listener else settings.port),
    }
    if listener is not None:
        listener.close()  # the gateway process binds it now
    children: dict[str, asyncio.subprocess.Process] = {}
    try:
        for service in services:
            children[service.name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "libs.events.cli", "run", service.name, env=env
            )
        _note(
            "started "
            + ", ".join(f"`opsledger run {name}` (pid {p.pid})" for name, p in children.items())
        )
        exits = {asyncio.create_task(p.wait()): name for name, p in children.items()}
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*exits, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            return None
        name = next(exits[task] for task in done if task in exits)
        code = children[name].returncode or 0
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the {name} process {how}, so `opsledger dev` stopped"
    finally:
        await stop_children(list(children.values()))


async def stop_children(children: Sequence[asyncio.subprocess.Process]) -> None:
    """SIGTERM (a clean stop), then SIGKILL whatever has not exited in time."""
    for proc in children:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    for proc in children:
        try:
            await asyncio.wait_for(proc.wait(), CHILD_STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("pid %s did not stop in time; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# --- running services ------------------------------------------------------------------------


async def run_services(
    settings: Settings,
    services: Sequence[Service],
    stop: asyncio.Event,
    *,
    relay: bool,
    timers: bool,
    listener: socket.socket | None = None,
) -> None:
    """Run `services` in this process until `stop`; the HTTP one (if any) serves on `listener`
    (else on a socket bound to settings.host:port before anything else starts). If the HTTP
    server ends by itself, the process stops and says so (exit 1) rather than run without it."""
    if not settings.database_url or not settings.nats_url:
        raise click.UsageError("set OPSLEDGER_DATABASE_URL and OPSLEDGER_NATS_URL (or use `dev`)")
    http = [s.http for s in services if s.http is not None]
    if http and listener is None:
        listener = listen(settings.host, settings.port)
    try:
        _preflight(settings, services)
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    system = System(
        settings=settings,
        database_url=settings.database_url,
        nats_url=settings.nats_url,
        services=services,
        relay=relay,
        timers=timers,
        name="+".join(s.name for s in services),
    )
    try:
        deps = await system.start()
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    server: QuietServer | None = None
    serving: asyncio.Task[None] | None = None
    metrics: tuple[QuietServer, asyncio.Task[None]] | None = None
    try:
        if http and listener is not None:
            server, serving = await serve_http(
                http[0](deps), host=settings.host, port=settings.port, sock=listener
            )
            click.echo(f"OpsLedger is running at {http_url(settings.host, listener)}")
            metrics = await serve_metrics(settings)
        click.echo(f"running: {', '.join(s.name for s in services)} (Ctrl-C stops)")
        await _until_stopped_or_ended(stop, serving)
        click.echo("stopping ...")
    finally:
        servers = [metrics] if metrics is not None else []
        if server is not None and serving is not None:
            servers.append((server, serving))
        for each_server, each_serving in servers:
            each_server.should_exit = True
            with contextlib.suppress(Exception):
                await each_serving
        if listener is not None:
            listener.close()
        await system.stop()


async def _until_stopped_or_ended(stop: asyncio.Event, serving: asyncio.Task[None] | None) -> None:
    stopping = asyncio.ensure_future(stop.wait())
    watched: set[asyncio.Future[Any]] = {stopping}
    if serving is not None:
        watched.add(serving)
    try:
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if serving is not None and serving.done() and not stop.is_set():
        failure = serving.exception() if not serving.cancelled() else None
        raise click.ClickException(f"the HTTP server stopped by itself ({failure!r}); stopping")


async def with_deps(
    settings: Settings, services: Sequence[Service], main: Callable[[Deps], Awaitable[Any]]
) -> Any:
    """Open the pool and the bus (the running dev stack's servers, else embedded ones if
    needed), migrate, run `main`, close."""
    async with AsyncExitStack() as stack:
        resolved = await resolve_servers(settings, stack)
        if not resolved.database_url or not resolved.nats_url:
            raise RuntimeError("resolve_servers left a server URL unset")
        deps = await open_deps(
            resolved, database_url=resolved.database_url, nats_url=resolved.nats_url, name="cli"
        )
        try:
            await prepare(deps, services)
            return await main(deps)
        finally:
            await close_deps(deps)

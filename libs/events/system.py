"""Composition root: opens the pool and the bus, migrates, and runs the relay, the timer
scheduler and any number of services in this process (`opsledger dev`, `run`, and tests)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from libs.events import catalog as _catalog  # noqa: F401  (registers the shared event types)
from libs.events.bus import RpcClient, connect_nats, ensure_event_stream
from libs.events.db import create_pool, migrate, store_migrations
from libs.events.relay import STALL_AFTER_S as RELAY_STALL_AFTER_S
from libs.events.relay import Relay
from libs.events.runtime import Deps, Service, ServiceRunner
from libs.events.settings import Settings
from libs.events.store import EventStore
from libs.events.supervisor import Supervisor, process_name
from libs.events.task_report import TaskReporter
from libs.events.timers import STALL_AFTER_S as TIMERS_STALL_AFTER_S
from libs.events.timers import TimerScheduler

log = logging.getLogger(__name__)


async def open_deps(
    settings: Settings, *, database_url: str, nats_url: str, name: str, pool_size: int = 10
) -> Deps:
    pool = await create_pool(
        database_url,
        max_size=pool_size,
        idle_in_transaction_timeout_s=settings.pg_idle_in_transaction_timeout_s,
        application=f"opsledger {name}",
    )
    try:
        nc = await connect_nats(nats_url, name=name)
    except Exception:
        await pool.close()
        raise
    js = nc.jetstream()
    wake_subject = settings.relay_wake_subject

    async def wake_relay() -> None:
        await nc.publish(wake_subject, b"")

    return Deps(
        supervisor=Supervisor(process_name(name)),
        settings=settings,
        pool=pool,
        store=EventStore(pool, wake=wake_relay),
        nc=nc,
        js=js,
        rpc=RpcClient(nc=nc, settings=settings),
    )


async def close_deps(deps: Deps) -> None:
    """Flush and close the bus, then the pool. Not drain(): runners have already finished their
    in-flight work, and nats-py's drain waits out its timeout on pull subscriptions."""
    with contextlib.suppress(Exception):
        await deps.nc.flush(timeout=2)
    with contextlib.suppress(Exception):
        await deps.nc.close()
    await deps.pool.close()


async def prepare(deps: Deps, services: Sequence[Service]) -> None:
    """Apply the store's and the services' migrations and declare the events stream."""
    migrations = store_migrations()
    for service in services:
        migrations.extend(service.migrations())
    await migrate(deps.pool, migrations)
    await ensure_event_stream(deps.js, deps.settings)


@dataclass
class System:
    """Everything one process runs. `relay`/`timers` off lets a test play a crash between steps."""

    settings: Settings
    database_url: str
    nats_url: str
    services: Sequence[Service]
    relay: bool = True
    timers: bool = True
    name: str = "opsledger"
    deps: Deps | None = None
    runners: list[ServiceRunner] = field(default_factory=list)
    relay_worker: Relay | None = None

    async def start(self) -> Deps:
        self.deps = deps = await open_deps(
            self.settings, database_url=self.database_url, nats_url=self.nats_url, name=self.name
        )
        try:
            await prepare(deps, self.services)
            reporter = TaskReporter(pool=deps.pool, supervisor=deps.supervisor)
            deps.supervisor.start("task report", reporter.run)
            if self.relay:
                self.relay_worker = Relay(
                    store=deps.store,
                    nc=deps.nc,
                    js=deps.js,
                    settings=self.settings,
                    database_url=self.database_url,
                )
                deps.supervisor.start(
                    "relay", self.relay_worker.run, stall_after_s=RELAY_STALL_AFTER_S
                )
            if self.timers:
                scheduler = TimerScheduler(store=deps.store, database_url=self.database_url)
                deps.supervisor.start("timers", scheduler.run, stall_after_s=TIMERS_STALL_AFTER_S)
            for service in self.services:
                runner = ServiceRunner(service=service, deps=deps)
                self.runners.append(runner)
                await runner.start()
            # started means ready: every task has its connections (or has said why not)
            if not await deps.supervisor.started():
                log.warning("some tasks were still starting: %s", deps.supervisor.down())
        except BaseException:
            await self.stop()
            raise
        return deps

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.stop()
        self.runners.clear()
        if self.deps is not None:
            await self.deps.supervisor.stop()
            await close_deps(self.deps)
            self.deps = None

    async def __aenter__(self) -> Deps:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

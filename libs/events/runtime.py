"""The service runtime: what a service declares, and how one replica of it is started.

Each consumer runs as a `ConsumerLoop` (libs/events/consumer_loop.py) under the process's
supervisor, request/reply methods answer in the service's queue group, and background tasks are
supervised too, so nothing a service runs can end without being logged, restarted and reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from libs.events.bus import RpcClient, RpcHandler, RpcServer
from libs.events.consumer_loop import ConsumerLoop
from libs.events.consumers import Consumer, Dispatcher
from libs.events.db import Migration, migrations_in
from libs.events.settings import Settings
from libs.events.store import EventStore
from libs.events.supervisor import Supervisor, TaskBody, TaskStatus


@dataclass
class Deps:
    """What a running service is given: settings, the pool, the store and the bus."""

    settings: Settings
    pool: asyncpg.Pool
    store: EventStore
    nc: NatsClient
    js: JetStreamContext
    rpc: RpcClient
    supervisor: Supervisor = field(default_factory=Supervisor)
    """Every long-running task of this process runs under it; `/readyz` reports from it."""

    def dispatcher(self, consumer: Consumer, *, service: str) -> Dispatcher:
        """The one way a consumer's handlers are run on this deployment's store (the live loop,
        a command's inline projection, replay and retries all use one)."""
        return Dispatcher(
            consumer=consumer, service=service, store=self.store, settings=self.settings
        )


BackgroundTask = Callable[[Deps, asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Service:
    """A service as the runtime sees it (each `services/<name>/app.py` defines one SERVICE)."""

    name: str
    consumers: Sequence[Consumer] = ()
    rpc: Callable[[Deps], Mapping[str, RpcHandler]] | None = None
    migrations_dir: Path | None = None
    background: Sequence[BackgroundTask] = ()
    http: Callable[[Deps], Any] | None = None
    """An ASGI app factory, for the service that serves HTTP (the gateway)."""
    startup: Sequence[Callable[[Deps], Coroutine[Any, Any, None]]] = ()
    """Run once, in order, before the service answers its first request (e.g. seeding the
    built-in ticket types, idempotently); a failure stops the start."""
    preflight: Callable[[Settings], None] | None = None
    """Checks run before anything starts (e.g. a required secret); raise to refuse to start."""

    def migrations(self) -> list[Migration]:
        return migrations_in(self.name, self.migrations_dir) if self.migrations_dir else []

    def dispatchers(self, deps: Deps) -> dict[str, Dispatcher]:
        return {c.name: deps.dispatcher(c, service=self.name) for c in self.consumers}


@dataclass
class ServiceRunner:
    """Runs one replica of a service: its consumers, its request/reply methods, its tasks, each
    long-running one under the process's supervisor."""

    service: Service
    deps: Deps
    _rpc: RpcServer | None = None

    @property
    def supervisor(self) -> Supervisor:
        return self.deps.supervisor

    async def start(self) -> None:
        dispatchers = self.service.dispatchers(self.deps)
        for consumer in self.service.consumers:
            loop = ConsumerLoop(deps=self.deps, dispatcher=dispatchers[consumer.name])
            self.supervisor.start(f"consumer {consumer.name}", loop.run)
        for index, task in enumerate(self.service.background):
            self.supervisor.start(
                f"{self.service.name} {getattr(task, '__name__', index)}",
                self._background(task),
                until_stopped=False,
            )
        for step in self.service.startup:
            await step(self.deps)
        if self.service.rpc is not None:
            self._rpc = RpcServer(
                nc=self.deps.nc,
                settings=self.deps.settings,
                service=self.service.name,
                methods=dict(self.service.rpc(self.deps)),
            )
            await self._rpc.start()

    def _background(self, task: BackgroundTask) -> TaskBody:
        async def body(status: TaskStatus) -> None:
            status.up()
            await task(self.deps, status.stopping)

        return body

    async def stop(self) -> None:
        """Stop answering requests; the supervisor stops the loops (a message a loop had not
        acked yet is redelivered after ack_wait, and the checkpoints make that harmless)."""
        if self._rpc is not None:
            await self._rpc.stop()
            self._rpc = None

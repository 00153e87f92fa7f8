"""The run's own Postgres and NATS, restarted mid-run on the same data dirs and addresses."""

from __future__ import annotations

import asyncio
import atexit
import time
from dataclasses import dataclass
from pathlib import Path

from bench.stress.helpers import sleep_until
from bench.stress.plan import Plan
from libs.events.embedded import (
    LOCALHOST,
    NATS_START_TIMEOUT,
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedServerError,
    free_port,
    nats_server_binary,
)

NATS_SPAWN_ATTEMPTS = 5


class PinnedNats(EmbeddedNats):
    """EmbeddedNats on fixed ports: after a restart clients reconnect to the same URL
    (EmbeddedNats picks fresh ports on every start)."""

    def __init__(self, data_dir: Path, *, port: int, monitor_port: int) -> None:
        super().__init__(data_dir)
        self.port = port
        self.monitor_port = monitor_port

    async def start(self) -> str:
        if self.pid is not None and self._url is not None:
            return self._url
        binary = nats_server_binary()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(NATS_SPAWN_ATTEMPTS):
            await asyncio.to_thread(self._spawn, binary, self.port, self.monitor_port)
            atexit.register(self._stop_sync)
            deadline = time.monotonic() + NATS_START_TIMEOUT
            if await self._wait_healthy(self.monitor_port, deadline):
                self._url = f"nats://{LOCALHOST}:{self.port}"
                self._monitor_url = f"http://{LOCALHOST}:{self.monitor_port}"
                return self._url
            await self.stop()
            await asyncio.sleep(1.0)  # the old listener may not have let go of the port yet
        raise EmbeddedServerError(f"nats-server did not start on port {self.port}")


@dataclass
class Servers:
    """The run's own Postgres and NATS, restartable on the same data dirs and addresses."""

    pg: EmbeddedPostgres
    nats: PinnedNats
    pg_url: str = ""
    nats_url: str = ""
    pg_restarts: int = 0
    nats_restarts: int = 0
    down: str = ""

    @classmethod
    async def start(cls, data: Path) -> Servers:
        port = free_port()
        monitor = free_port()
        while monitor == port:
            monitor = free_port()
        servers = cls(
            pg=EmbeddedPostgres(data), nats=PinnedNats(data, port=port, monitor_port=monitor)
        )
        servers.pg_url = await servers.pg.start()
        try:
            servers.nats_url = await servers.nats.start()
        except BaseException:
            await servers.pg.stop()
            raise
        return servers

    async def stop(self) -> None:
        await self.nats.stop()
        await self.pg.stop()

    async def restart_postgres(self, downtime: float) -> None:
        self.down = "postgres"
        try:
            await self.pg.stop()
            await asyncio.sleep(downtime)
            url = await self.pg.start()
        finally:
            self.down = ""
        if url != self.pg_url:
            raise EmbeddedServerError(f"postgres came back at {url}, not {self.pg_url}")
        self.pg_restarts += 1

    async def restart_nats(self, downtime: float) -> None:
        self.down = "nats"
        try:
            await self.nats.stop()
            await asyncio.sleep(downtime)
            url = await self.nats.start()
        finally:
            self.down = ""
        if url != self.nats_url:
            raise EmbeddedServerError(f"nats came back at {url}, not {self.nats_url}")
        self.nats_restarts += 1


async def restart_servers(servers: Servers, plan: Plan, began: float, t0: float) -> None:
    """Postgres a third of the way into the writes, NATS two thirds of the way in."""
    await sleep_until(began + plan.seconds * 0.35)
    print(f"[{time.monotonic() - t0:5.0f}s] restarting postgres", flush=True)
    await servers.restart_postgres(plan.downtime_s)
    await sleep_until(began + plan.seconds * 0.65)
    print(f"[{time.monotonic() - t0:5.0f}s] restarting nats", flush=True)
    await servers.restart_nats(plan.downtime_s)

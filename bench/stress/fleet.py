"""The worker processes: spawned, SIGKILLed at random, restarted, shut down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.stress.helpers import sleep_unless_stopped
from bench.stress.plan import Plan
from bench.stress.servers import Servers
from libs.events.settings import Settings

REPO = Path(__file__).resolve().parents[2]
WORKER_STOP_TIMEOUT_S = 20.0


def child_env() -> dict[str, str]:
    """The environment without OPSLEDGER_* (a worker is configured by its arguments alone)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPSLEDGER_")}


@dataclass
class WorkerProc:
    replica: int
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    killed: bool = False
    starts: int = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


@dataclass
class Fleet:
    """The worker processes: started, SIGKILLed at random, restarted when they exit (unless
    `held`). The first one is never killed at random: it must ride out both server restarts."""

    argv: Callable[[int], list[str]]
    workers: list[WorkerProc]
    kills: int = 0
    restarts: int = 0
    unexpected_exits: list[int] = field(default_factory=list)
    held: set[int] = field(default_factory=set)

    async def spawn(self, worker: WorkerProc) -> None:
        with worker.log_path.open("ab") as out:
            worker.proc = await asyncio.create_subprocess_exec(
                *self.argv(worker.replica),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=REPO,
                env=child_env(),
                start_new_session=True,  # a terminal Ctrl-C reaches the harness only
            )
        worker.starts += 1

    async def start_all(self) -> None:
        for worker in self.workers:
            await self.spawn(worker)

    def kill(self, worker: WorkerProc, *, chaos: bool = True) -> None:
        if worker.proc is not None and worker.running:
            worker.killed = True
            worker.proc.send_signal(signal.SIGKILL)
            if chaos:
                self.kills += 1

    async def wait_exited(self, workers: Iterable[WorkerProc]) -> None:
        for worker in workers:
            if worker.proc is not None:
                await asyncio.wait_for(worker.proc.wait(), timeout=WORKER_STOP_TIMEOUT_S)

    async def supervise(self, stop: asyncio.Event, rng: random.Random) -> None:
        """Restart any worker that exited (killed by us or not) until `stop`."""
        while await sleep_unless_stopped(stop, 0.5):
            for worker in self.workers:
                if worker.proc is None or worker.running or worker.replica in self.held:
                    continue
                if not worker.killed:
                    self.unexpected_exits.append(worker.proc.returncode or 0)
                worker.killed = False
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                await self.spawn(worker)
                self.restarts += 1

    async def kill_at_random(self, stop: asyncio.Event, plan: Plan, rng: random.Random) -> None:
        while await sleep_unless_stopped(stop, rng.uniform(*plan.kill_every)):
            alive = [w for w in self.workers[1:] or self.workers if w.running]
            if alive:
                self.kill(rng.choice(alive))

    async def shutdown(self) -> None:
        """SIGTERM every worker, wait, SIGKILL what is left."""
        running = [w.proc for w in self.workers if w.proc is not None and w.running]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                await asyncio.wait_for(proc.wait(), timeout=WORKER_STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


def worker_argv(
    servers: Servers, settings: Settings, plan: Plan, data: Path
) -> Callable[[int], list[str]]:
    def argv(replica: int) -> list[str]:
        options = {
            "--database-url": servers.pg_url,
            "--nats-url": servers.nats_url,
            "--namespace": settings.namespace,
            "--replica": str(replica),
            "--failure-rate": str(plan.failure_rate),
            "--max-attempts": str(plan.max_attempts),
            "--data-dir": str(data),
        }
        flags = [part for pair in options.items() for part in pair]
        return [sys.executable, "-m", "bench.stress", "worker", *flags]

    return argv

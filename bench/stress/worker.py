"""The worker process: one System running the stress service, until SIGTERM or orphaned."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.stress.helpers import sleep_unless_stopped
from bench.stress.logs import WORKER_LOG_FORMAT
from bench.stress.service import CHAOS, STRESS
from libs.events import event_loop
from libs.events.settings import Settings
from libs.events.system import System

log = logging.getLogger("bench.stress")

WORKER_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class WorkerArgs:
    database_url: str
    nats_url: str
    namespace: str
    replica: int
    failure_rate: float
    max_attempts: int
    data_dir: Path

    @property
    def settings(self) -> Settings:
        return Settings(
            env="test",
            namespace=self.namespace,
            database_url=self.database_url,
            nats_url=self.nats_url,
            data_dir=self.data_dir / f"w{self.replica}",
            handler_max_attempts=self.max_attempts,
        )


async def start_system(args: WorkerArgs, stop: asyncio.Event) -> System | None:
    """Start a System, retrying while Postgres or NATS is down (bounded)."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while not stop.is_set():
        system = System(
            settings=args.settings,
            database_url=args.database_url,
            nats_url=args.nats_url,
            services=[STRESS],
            relay=True,
            timers=False,
            name=f"stress-w{args.replica}",
        )
        try:
            await system.start()
            return system
        except Exception as exc:
            log.warning("worker %d could not start: %r", args.replica, exc)
            with contextlib.suppress(Exception):
                await system.stop()
        if time.monotonic() >= deadline:
            return None
        await sleep_unless_stopped(stop, 1.0)
    return None


async def stop_when_orphaned(stop: asyncio.Event) -> None:
    """A worker whose harness died (it was SIGKILLed too) stops by itself."""
    parent = os.getppid()
    while await sleep_unless_stopped(stop, 1.0):
        if os.getppid() != parent:
            log.warning("harness %d is gone; stopping", parent)
            stop.set()


async def run_worker(args: WorkerArgs) -> int:
    CHAOS.failure_rate = args.failure_rate
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    orphan = asyncio.create_task(stop_when_orphaned(stop))
    try:
        system = await start_system(args, stop)
        if system is None:
            return 0 if stop.is_set() else 2
        log.info("worker %d running (pid %d)", args.replica, os.getpid())
        try:
            await stop.wait()
        finally:
            await system.stop()
        return 0
    finally:
        orphan.cancel()


def worker_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stress worker", description="one stress worker process"
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--replica", type=int, required=True)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()))
    return parser


def worker_main(argv: Sequence[str]) -> int:
    ns = worker_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=WORKER_LOG_FORMAT)
    log.setLevel(logging.INFO)
    args = WorkerArgs(
        database_url=str(ns.database_url),
        nats_url=str(ns.nats_url),
        namespace=str(ns.namespace),
        replica=int(ns.replica),
        failure_rate=float(ns.failure_rate),
        max_attempts=int(ns.max_attempts),
        data_dir=Path(ns.data_dir),
    )
    return event_loop.run(run_worker(args))

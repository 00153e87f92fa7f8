"""One supervisor for every long-running task of a process (relay, consumers, timer scheduler,
listeners, service background tasks): no task can end quietly.

A task that raises is logged with its name and traceback, counted in
`opsledger_task_restarts_total`, shown as down (since when, and why) by `states()` and so by
`/readyz`, and restarted after an exponential backoff with jitter; the backoff starts over once a
run has stayed healthy for a while. A task says it is healthy by calling `status.up()` once its
connections are in place, so a task that fails again right after a restart stays reported down.
A long-running task that returns while the process is running is a failure too; a one-shot task
(`until_stopped=False`) may finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

TASK_RESTARTS = Counter(
    "opsledger_task_restarts_total", "Restarts of a supervised task after it failed", ["task"]
)
TASK_UP = Gauge("opsledger_task_up", "1 while a supervised task runs healthy, else 0", ["task"])

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0
HEALTHY_AFTER_S = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TaskState:
    """What `/readyz` shows of one task."""

    name: str
    state: str = "starting"
    """starting | up | down | finished (and `stalled`, reported for an up task gone quiet)"""
    since: datetime = field(default_factory=_now)
    restarts: int = 0
    last_error: str | None = None
    stall_after_s: float | None = None
    """A task that beats (`status.beat()`) is stalled when up but silent this long."""
    last_beat: float = field(default_factory=time.monotonic)

    @property
    def stalled(self) -> bool:
        return (
            self.state == "up"
            and self.stall_after_s is not None
            and time.monotonic() - self.last_beat > self.stall_after_s
        )

    @property
    def healthy(self) -> bool:
        return self.state in ("up", "finished") and not self.stalled

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.name,
            "state": "stalled" if self.stalled else self.state,
            "since": self.since.isoformat(),
            "restarts": self.restarts,
            "last_error": self.last_error,
        }


@dataclass
class TaskStatus:
    """Given to a running task: the process's stop signal, and a way to report health."""

    state: TaskState
    stopping: asyncio.Event
    on_change: Callable[[], None] = lambda: None

    def beat(self) -> None:
        """The task is making progress (a task started with `stall_after_s` must beat)."""
        self.state.last_beat = time.monotonic()

    def up(self) -> None:
        """The task has what it needs (connections, subscriptions) and is doing its work."""
        self.beat()
        if self.state.state != "up":
            self.state.state = "up"
            self.state.since = _now()
            TASK_UP.labels(self.state.name).set(1)
            self.on_change()


TaskBody = Callable[[TaskStatus], Awaitable[None]]


def restart_delay(failures: int) -> float:
    """Exponential backoff with jitter for the `failures`-th failure in a row (1-based)."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (failures - 1))
    return random.uniform(ceiling / 2, ceiling)


def process_name(name: str) -> str:
    """`<what it runs>@<host>:<pid>`: unique per live process, readable in /readyz."""
    return f"{name}@{socket.gethostname()}:{os.getpid()}"


class Supervisor:
    """Starts, watches and restarts a process's long-running tasks."""

    def __init__(self, process: str | None = None) -> None:
        self.process = process or process_name("opsledger")
        self.stopping = asyncio.Event()
        self._states: dict[str, TaskState] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Wait until a task's state changes."""
        await self._changed.wait()
        self._changed.clear()

    def start(
        self,
        name: str,
        body: TaskBody,
        *,
        until_stopped: bool = True,
        stall_after_s: float | None = None,
    ) -> None:
        """Run `body` under supervision. Names are unique within a process. With
        `stall_after_s`, the task must `beat()` at least that often while up, or it is reported
        stalled (not healthy) until it beats again."""
        if name in self._states:
            raise ValueError(f"a task named {name!r} is already supervised")
        state = TaskState(name, stall_after_s=stall_after_s)
        self._states[name] = state
        TASK_UP.labels(name).set(0)
        self._tasks.append(
            asyncio.create_task(self._supervise(state, body, until_stopped), name=name)
        )

    async def started(self, timeout: float = 10.0) -> bool:
        """Wait until no task is still starting (each is up, has failed, or has finished), at
        most `timeout`; whether that happened in time."""
        deadline = time.monotonic() + timeout
        while any(s.state == "starting" for s in self._states.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed(), timeout=min(left, 0.1))
        return True

    def states(self) -> list[TaskState]:
        return list(self._states.values())

    def down(self) -> list[TaskState]:
        """Tasks that are not healthy now (failed and waiting to restart, or not up again yet)."""
        return [s for s in self._states.values() if not s.healthy]

    async def stop(self, timeout: float = 5.0) -> None:
        """Signal every task to stop, give them `timeout` to return, cancel the rest and give
        them `timeout` again; a task that still has not ended (it swallows cancellation, or its
        cleanup hangs) is logged and left behind rather than hang the process's stop."""
        self.stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
            for task in self._tasks:
                task.cancel()
            _, stuck = await asyncio.wait(self._tasks, timeout=timeout)
            for task in stuck:
                log.error(
                    "task %s did not stop within %.0f s of being cancelled",
                    task.get_name(),
                    2 * timeout,
                )
        self._tasks.clear()

    async def _supervise(self, state: TaskState, body: TaskBody, until_stopped: bool) -> None:
        failures = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                await body(TaskStatus(state, self.stopping, self._changed.set))
                if self.stopping.is_set() or not until_stopped:
                    self._mark(state, "finished")
                    return
                raise RuntimeError("the task returned while the process is still running")
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if self.stopping.is_set() or task is None or task.cancelling():
                    raise  # the supervisor (or the process) is stopping this task
                failures = await self._failed(state, exc, started, failures)
            except Exception as exc:
                if self.stopping.is_set():
                    return
                failures = await self._failed(state, exc, started, failures)

    async def _failed(
        self, state: TaskState, exc: BaseException, started: float, failures: int
    ) -> int:
        """Log, count and report a failure, then wait out the backoff; the failures in a row."""
        if time.monotonic() - started > HEALTHY_AFTER_S:
            failures = 0
        failures += 1
        delay = restart_delay(failures)
        self._mark(state, "down", error=f"{type(exc).__name__}: {exc}")
        state.restarts += 1
        TASK_RESTARTS.labels(state.name).inc()
        log.error(
            "task %s failed (failure %d in a row); restarting in %.2f s",
            state.name,
            failures,
            delay,
            exc_info=exc,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)
        return failures

    def _mark(self, state: TaskState, new: str, *, error: str | None = None) -> None:
        if state.state != new:
            state.state = new
            state.since = _now()
        if error is not None:
            state.last_error = error[:500]
        TASK_UP.labels(state.name).set(1 if new == "up" else 0)
        self._changed.set()

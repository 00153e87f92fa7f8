"""Stress run: the runtime must never lose, duplicate or reorder an event under failure.

Concurrent writers append `stress.appended` events to many streams with `EventStore.append`:
some plain, some inside explicit transactions that sleep before committing (holding the read
horizon), some that roll back (leaving position holes). Several worker processes each run a
`System` with the relay on and the stress service, whose consumer records every event it handles
in bench_stress.handled inside the handler's transaction (no unique constraint: a committed
duplicate is a real one). Meanwhile the harness SIGKILLs workers at random and restarts them,
restarts Postgres and NATS on the same data dirs and addresses, handlers fail at random, and
`poison` events always fail, so events are retried and parked. Worker 1 is never killed at random,
so it has to ride out both server restarts in place; after the drain each worker is left alone
in turn (the others killed) and must publish and handle a few new events by itself, which a
worker whose relay or consumer task died cannot.

Then the writers stop, the workers drain, and eventstore.events (the truth) is compared with what
was handled and parked:

    written       events of the stress type in eventstore.events
    handled       distinct event ids in bench_stress.handled
    duplicated    event ids handled more than once
    out of order  within a stream, a first handling of a version below one handled before it
    lost          written - handled - parked (and not handled)

    .venv/bin/python -m bench.stress [--seconds 120] [--quick]

Prints a table, writes it to bench/results/stress.md, and exits 1 unless nothing was lost,
duplicated or reordered, every poison event was parked, the writers' acknowledged commits are all
in the log (and nothing they rolled back is), both servers were restarted and every worker passed
its solo probe. Workers are this module too: `python -m bench.stress worker --database-url ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import logging
import os
import platform
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from uuid import UUID

import asyncpg

from libs.events.consumers import Consumer, HandlerContext, list_parked
from libs.events.embedded import (
    LOCALHOST,
    NATS_START_TIMEOUT,
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedServerError,
    free_port,
    nats_server_binary,
)
from libs.events.envelope import Actor, Metadata, new_id
from libs.events.registry import DomainEvent, event
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.store import ANY, ConcurrencyError, EventStore
from libs.events.system import System, close_deps, open_deps, prepare
from libs.events.testing import unique_name

log = logging.getLogger("bench.stress")

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "stress.md"
MIGRATIONS = Path(__file__).parent / "stress_migrations"
EVENT_TYPE = "stress.appended"
CONSUMER = "stress-recorder"
META = Metadata(actor=Actor.system(), service="stress")
RELAY_LOCK_KEY = 7_311_002
"""The relay's advisory lock (RELAY_LOCK in libs/events/relay.py): who is the leader."""

MAX_TX_SLEEP_S = 0.05
WRITE_ATTEMPT_TIMEOUT_S = 15.0
RETRY_GRACE_S = 30.0
"""How long after the writers' deadline an unacknowledged append is still retried."""
WORKER_START_TIMEOUT_S = 120.0
WORKER_STOP_TIMEOUT_S = 20.0
READY_TIMEOUT_S = 60.0
SETTLE_S = 3.0
DRAIN_STALL_S = 75.0
"""Longer than the runtime's ack wait (60 s), after which a lost delivery is redelivered."""
PROGRESS_EVERY_S = 5.0
PROBE_EVENTS = 30
PROBE_TIMEOUT_S = 45.0
NATS_SPAWN_ATTEMPTS = 5
HIGHLIGHTS = 12
EXAMPLES = 5
INJECTED = ("InjectedFailure", "PoisonedEvent")


# --- the stress service (runs in the workers) ------------------------------------------------


@event(EVENT_TYPE)
class StressAppended(DomainEvent):
    """One stress event; `poison` ones fail on every attempt and must end up parked."""

    writer: int
    seq: int
    poison: bool = False


class InjectedFailure(Exception):
    """A random handler failure (after the handler's insert, so its transaction rolls back)."""


class PoisonedEvent(Exception):
    """The handler always fails on a poison event."""


@dataclass
class HandlerChaos:
    failure_rate: float = 0.0


CHAOS = HandlerChaos()
"""Set by the worker process from its command line."""


async def record_handled(ctx: HandlerContext, item: StressAppended) -> None:
    env = ctx.envelope
    await ctx.conn.execute(
        "INSERT INTO bench_stress.handled (event_id, stream_id, version, replica) "
        "VALUES ($1, $2, $3, $4)",
        env.id,
        env.stream_id,
        env.version,
        ctx.settings.data_dir.name,
    )
    if item.poison:
        raise PoisonedEvent(f"poison event {env.id}")
    if random.random() < CHAOS.failure_rate:
        raise InjectedFailure(f"injected failure on {env.id}")


STRESS = Service(
    name="stress",
    consumers=[
        Consumer(
            name=CONSUMER,
            handlers={EVENT_TYPE: record_handled},
            replayable=False,
            tables=("bench_stress.handled",),
        )
    ],
    migrations_dir=MIGRATIONS,
)


# --- plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    seconds: float
    workers: int = 3
    writers: int = 8
    streams: int = 200
    rate: float = 150.0
    """Events per second the writers aim for, all together."""
    failure_rate: float = 0.2
    poison_rate: float = 0.004
    max_attempts: int = 3
    kill_every: tuple[float, float] = (4.0, 12.0)
    downtime_s: float = 2.0
    drain_timeout_s: float = 180.0
    seed: int | None = None

    @property
    def label(self) -> str:
        return (
            f"{self.seconds:.0f} s of writes, {self.writers} writers at ~{self.rate:.0f} ev/s "
            f"over {self.streams} streams, {self.workers} worker processes, handler failure "
            f"p={self.failure_rate}, poison rate {self.poison_rate}, "
            f"handler_max_attempts={self.max_attempts}, a worker SIGKILLed every "
            f"{self.kill_every[0]:.0f}-{self.kill_every[1]:.0f} s, Postgres and NATS each "
            f"restarted once ({self.downtime_s:.0f} s down)"
        )


# --- small helpers ----------------------------------------------------------------------------


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`; False (at once) if `stop` is set first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    return not stop.is_set()


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


def describe(exc: BaseException) -> str:
    return type(exc).__name__


def child_env() -> dict[str, str]:
    """The environment without OPSLEDGER_* (a worker is configured by its arguments alone)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPSLEDGER_")}


# --- embedded servers that keep their address across restarts ---------------------------------


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


# --- writers ----------------------------------------------------------------------------------

Mode = Literal["plain", "commit", "rollback"]
MODES: tuple[Mode, ...] = ("plain", "commit", "rollback")
MODE_WEIGHTS = (0.5, 0.35, 0.15)


class NotCommitted(Exception):
    """The append failed before COMMIT was sent: it certainly did not commit."""


@dataclass(frozen=True)
class Append:
    stream_id: str
    events: list[StressAppended]
    ids: list[UUID]


@dataclass
class WriteLog:
    """What the writers know: acknowledged, ambiguous (commit sent, answer lost) and surely
    uncommitted event ids, plus counts for the report."""

    confirmed: set[UUID] = field(default_factory=set)
    ambiguous: set[UUID] = field(default_factory=set)
    not_committed: set[UUID] = field(default_factory=set)
    appends: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def make_append(writer: int, seq: int, plan: Plan, rng: random.Random) -> Append:
    """1-3 events for a random stream; a poison event is written between two good ones, so the
    one after it reaches the consumer with a failing event in the gap behind it."""
    if rng.random() < 2 * plan.poison_rate:  # about poison_rate of all events
        flags = [False, True, False]
    else:
        flags = [False] * rng.randint(1, 3)
    events = [StressAppended(writer=writer, seq=seq + i, poison=f) for i, f in enumerate(flags)]
    return Append(f"s-{rng.randrange(plan.streams)}", events, [new_id() for _ in events])


async def append_plain(store: EventStore, item: Append) -> None:
    """One autocommit append: any failure but a version conflict is ambiguous."""
    try:
        await store.append(
            item.stream_id, item.events, expected_version=ANY, metadata=META, ids=item.ids
        )
    except ConcurrencyError as exc:
        raise NotCommitted from exc


async def append_in_transaction(
    store: EventStore, item: Append, pause: float, *, commit: bool
) -> None:
    """Append in an explicit transaction, sleep `pause`, then commit or roll back.

    Raises NotCommitted for a failure before COMMIT; a failure during COMMIT propagates as it is
    (ambiguous); one after it (releasing the connection) is ignored."""
    state = "open"
    try:
        async with store.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                await store.append(
                    item.stream_id,
                    item.events,
                    expected_version=ANY,
                    metadata=META,
                    ids=item.ids,
                    conn=conn,
                )
                await asyncio.sleep(pause)
            except BaseException:
                with contextlib.suppress(Exception):
                    await tx.rollback()
                raise
            if not commit:
                await tx.rollback()
                return
            state = "committing"
            await tx.commit()
            state = "committed"
    except Exception as exc:
        if state == "open":
            raise NotCommitted from exc
        if state == "committing":
            raise
    await store.committed()


async def attempt(store: EventStore, item: Append, mode: Mode, rng: random.Random) -> None:
    async with asyncio.timeout(WRITE_ATTEMPT_TIMEOUT_S):
        if mode == "plain":
            await append_plain(store, item)
        else:
            pause = rng.uniform(0, MAX_TX_SLEEP_S)
            await append_in_transaction(store, item, pause, commit=mode == "commit")


async def write(
    store: EventStore, item: Append, mode: Mode, wlog: WriteLog, rng: random.Random, until: float
) -> None:
    """Append `item` until it is acknowledged (retrying with the same ids, which the store makes
    idempotent) or `until` passes; a rollback is tried once."""
    ambiguous = False
    while True:
        try:
            await attempt(store, item, mode, rng)
        except NotCommitted as exc:
            wlog.errors[describe(exc.__cause__ or exc)] += 1
        except Exception as exc:
            ambiguous = ambiguous or mode != "rollback"
            wlog.errors[describe(exc)] += 1
        else:
            if mode == "rollback":
                break
            wlog.confirmed.update(item.ids)
            wlog.appends[f"{mode}: acknowledged"] += 1
            return
        if mode == "rollback" or time.monotonic() >= until:
            break
        await asyncio.sleep(rng.uniform(0.05, 0.3))
    outcome = "ambiguous" if ambiguous else "not committed"
    wlog.appends[f"{mode}: {outcome}"] += 1
    (wlog.ambiguous if ambiguous else wlog.not_committed).update(item.ids)


async def writer(
    index: int, store: EventStore, plan: Plan, wlog: WriteLog, deadline: float, seed: int
) -> None:
    """Append paced batches of 1-3 events to random streams until `deadline`."""
    rng = random.Random(seed)
    per_event = plan.writers / plan.rate
    seq = 0
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        item = make_append(index, seq, plan, rng)
        seq += len(item.events)
        mode = rng.choices(MODES, MODE_WEIGHTS)[0]
        await write(store, item, mode, wlog, rng, deadline + RETRY_GRACE_S)
        next_at = max(next_at + len(item.events) * per_event, time.monotonic() - 1.0)
        await sleep_until(next_at)


# --- worker processes -------------------------------------------------------------------------


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


# --- probes -----------------------------------------------------------------------------------

_COUNTS = """
SELECT (SELECT count(*) FROM eventstore.events WHERE type = $1) AS written,
       (SELECT count(DISTINCT event_id) FROM bench_stress.handled) AS handled,
       (SELECT count(*) FROM eventstore.parked_events
        WHERE consumer = $2 AND resolved_at IS NULL) AS parked
"""

_OUTSTANDING = """
SELECT count(*) FROM eventstore.events e
WHERE e.type = $1
  AND NOT EXISTS (SELECT 1 FROM bench_stress.handled h WHERE h.event_id = e.id)
  AND NOT EXISTS (SELECT 1 FROM eventstore.parked_events p
                  WHERE p.event_id = e.id AND p.consumer = $2 AND p.resolved_at IS NULL)
"""


async def outstanding(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval(_OUTSTANDING, EVENT_TYPE, CONSUMER, timeout=10))


async def progress(
    deps: Deps, servers: Servers, fleet: Fleet, stop: asyncio.Event, began: float
) -> None:
    while await sleep_unless_stopped(stop, PROGRESS_EVERY_S):
        elapsed = time.monotonic() - began
        alive = sum(w.running for w in fleet.workers)
        status = f"workers {alive}/{len(fleet.workers)} kills {fleet.kills}"
        if servers.down:
            status += f" ({servers.down} down)"
        try:
            row = await deps.pool.fetchrow(_COUNTS, EVENT_TYPE, CONSUMER, timeout=5)
            left = await outstanding(deps.pool)
        except Exception as exc:
            print(f"[{elapsed:5.0f}s] database unavailable ({describe(exc)}); {status}", flush=True)
            continue
        assert row is not None
        print(
            f"[{elapsed:5.0f}s] written {row['written']} handled {row['handled']} "
            f"parked {row['parked']} outstanding {left}; {status}",
            flush=True,
        )


async def wait_ready(deps: Deps) -> bool:
    """Wait until the consumer exists on the bus and a relay holds the leader lock."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            await deps.js.consumer_info(deps.settings.stream_name, CONSUMER)
            if await relay_leaders(deps.pool):
                return True
        await asyncio.sleep(0.25)
    return False


async def relay_leaders(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = 0 AND objid = $1",
            RELAY_LOCK_KEY,
        )
    )


async def drain(deps: Deps, timeout: float) -> tuple[bool, float]:
    """Wait until every written event is handled or parked; (drained, seconds waited). Gives up
    early when nothing moved for longer than a redelivery takes."""
    began = last_change = time.monotonic()
    last = -1
    while time.monotonic() - began < timeout and time.monotonic() - last_change < DRAIN_STALL_S:
        with contextlib.suppress(Exception):
            left = await outstanding(deps.pool)
            if left == 0:
                return True, time.monotonic() - began
            if left != last:
                last, last_change = left, time.monotonic()
        await asyncio.sleep(1.0)
    return False, time.monotonic() - began


_SETTLED = """
SELECT count(*) FROM unnest($1::uuid[]) AS t(id)
WHERE EXISTS (SELECT 1 FROM bench_stress.handled h WHERE h.event_id = t.id)
   OR EXISTS (SELECT 1 FROM eventstore.parked_events p
              WHERE p.event_id = t.id AND p.consumer = $2 AND p.resolved_at IS NULL)
"""


@dataclass(frozen=True)
class Probe:
    """A worker left alone after the chaos: did its own relay and consumer take new events?"""

    replica: int
    starts: int
    settled: int
    appended: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.appended > 0 and self.settled == self.appended


async def append_probe(deps: Deps, replica: int, plan: Plan, wlog: WriteLog) -> list[UUID]:
    rng = random.Random()
    ids: list[UUID] = []
    for i in range(PROBE_EVENTS):
        stream = f"s-{rng.randrange(plan.streams)}"
        item = Append(stream, [StressAppended(writer=-replica, seq=i)], [new_id()])
        await write(deps.store, item, "plain", wlog, rng, time.monotonic() + PROBE_TIMEOUT_S)
        ids += [e for e in item.ids if e in wlog.confirmed]
    return ids


async def probe_alone(
    deps: Deps, fleet: Fleet, worker: WorkerProc, plan: Plan, wlog: WriteLog
) -> Probe:
    """Kill every other worker (and keep them down), append a few events and wait until they
    are handled or parked: that needs this worker's relay and consumer to be alive."""
    others = [w for w in fleet.workers if w is not worker]
    fleet.held = {w.replica for w in others}
    try:
        for other in others:
            fleet.kill(other, chaos=False)
        await fleet.wait_exited(others)
        began = time.monotonic()
        ids = await append_probe(deps, worker.replica, plan, wlog)
        settled = 0
        while settled < len(ids) and time.monotonic() - began < PROBE_TIMEOUT_S:
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                settled = int(await deps.pool.fetchval(_SETTLED, ids, CONSUMER, timeout=5))
        seconds = time.monotonic() - began
    finally:
        fleet.held = set()
    return Probe(worker.replica, worker.starts, settled, len(ids), seconds)


async def probe_each(deps: Deps, fleet: Fleet, plan: Plan, wlog: WriteLog) -> list[Probe]:
    probes = []
    for worker in fleet.workers:
        probe = await probe_alone(deps, fleet, worker, plan, wlog)
        print(
            f"worker {probe.replica} alone: {probe.settled}/{probe.appended} probe events "
            f"handled or parked in {probe.seconds:.1f} s",
            flush=True,
        )
        probes.append(probe)
    return probes


@dataclass
class BusState:
    """How the relay and the bus look at the end of the drain (diagnostics, not checks)."""

    relay_leaders: int | None = None
    unpublished: int | None = None
    stream_messages: int | None = None
    consumer_pending: int | None = None
    consumer_ack_pending: int | None = None
    consumer_redelivered: int | None = None


async def bus_state(deps: Deps) -> BusState:
    state = BusState()
    with contextlib.suppress(Exception):
        state.relay_leaders = await relay_leaders(deps.pool)
    with contextlib.suppress(Exception):
        state.unpublished = await unpublished(deps.pool)
    with contextlib.suppress(Exception):
        info = await deps.js.stream_info(deps.settings.stream_name)
        state.stream_messages = info.state.messages
    with contextlib.suppress(Exception):
        consumer = await deps.js.consumer_info(deps.settings.stream_name, CONSUMER)
        state.consumer_pending = consumer.num_pending
        state.consumer_ack_pending = consumer.num_ack_pending
        state.consumer_redelivered = consumer.num_redelivered
    return state


async def unpublished(pool: asyncpg.Pool) -> int:
    """Stress events after the relay's checkpoint (in commit order): not published yet."""
    row = await pool.fetchrow(
        "SELECT tx_id::text AS tx, position FROM eventstore.relay_checkpoint "
        "ORDER BY tx_id DESC, position DESC LIMIT 1"
    )
    tx, position = (row["tx"], row["position"]) if row is not None else ("0", 0)
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM eventstore.events WHERE type = $1 "
            "AND (tx_id, position) > ($2::text::xid8, $3::bigint)",
            EVENT_TYPE,
            tx,
            position,
        )
    )


# --- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    stream_id: str
    version: int
    poison: bool


@dataclass
class Findings:
    written: dict[UUID, Written]
    handled: Counter[UUID]
    parked: set[UUID]
    out_of_order: list[str]
    """One line per first handling of a version below one handled before it in its stream."""
    wlog: WriteLog
    examples: list[str] = field(default_factory=list)

    @property
    def written_ids(self) -> set[UUID]:
        return set(self.written)

    @property
    def handled_ids(self) -> set[UUID]:
        return set(self.handled)

    @property
    def lost(self) -> set[UUID]:
        return self.written_ids - self.handled_ids - self.parked

    @property
    def duplicated(self) -> dict[UUID, int]:
        return {k: n for k, n in self.handled.items() if n > 1}

    @property
    def poison(self) -> set[UUID]:
        return {k for k, w in self.written.items() if w.poison}

    @property
    def parked_not_handled(self) -> set[UUID]:
        return self.parked - self.handled_ids

    @property
    def acknowledged_missing(self) -> set[UUID]:
        return self.wlog.confirmed - self.written_ids

    @property
    def uncommitted_stored(self) -> set[UUID]:
        return self.wlog.not_committed & self.written_ids

    @property
    def unknown_handled(self) -> set[UUID]:
        return self.handled_ids - self.written_ids


def out_of_order(rows: Iterable[asyncpg.Record]) -> list[str]:
    """Rows in handling order; a first handling of a version below the stream's highest
    version handled so far is out of order (repeats are counted as duplicates instead)."""
    seen: set[UUID] = set()
    highest: dict[str, int] = {}
    bad: list[str] = []
    for row in rows:
        event_id: UUID = row["event_id"]
        if event_id in seen:
            continue
        seen.add(event_id)
        stream, version = str(row["stream_id"]), int(row["version"])
        if version < highest.get(stream, 0):
            bad.append(f"{stream} v{version} handled after v{highest[stream]}")
        highest[stream] = max(version, highest.get(stream, 0))
    return bad


async def explain_lost(pool: asyncpg.Pool, f: Findings, event_id: UUID) -> str:
    """A lost event beside its consumer's checkpoint and the events parked in its stream."""
    w = f.written[event_id]
    text = f"lost {w.stream_id} v{w.version} ({event_id})"
    with contextlib.suppress(Exception):
        checkpoint = await pool.fetchval(
            "SELECT version FROM eventstore.consumer_streams WHERE consumer = $1 "
            "AND stream_id = $2",
            CONSUMER,
            w.stream_id,
        )
        parked = await pool.fetch(
            "SELECT version, attempts, split_part(error, '(', 1) AS error "
            "FROM eventstore.parked_events WHERE consumer = $1 AND stream_id = $2 "
            "ORDER BY version",
            CONSUMER,
            w.stream_id,
        )
        listed = ", ".join(f"v{r['version']} ({r['error']} x{r['attempts']})" for r in parked)
        text += f": checkpoint of the stream at v{checkpoint}; parked there: {listed or 'none'}"
    return text


def where(f: Findings, event_id: UUID) -> str:
    w = f.written.get(event_id)
    return f"{w.stream_id} v{w.version}" if w else "an event not in the log"


async def examples(pool: asyncpg.Pool, f: Findings) -> list[str]:
    """A few of each kind of failure, to start debugging from."""
    lost = sorted(f.lost, key=lambda i: (f.written[i].stream_id, f.written[i].version))
    lines = [await explain_lost(pool, f, event_id) for event_id in lost[:EXAMPLES]]
    for event_id, n in list(f.duplicated.items())[:EXAMPLES]:
        lines.append(f"duplicated {where(f, event_id)} ({event_id}): handled {n} times")
    lines += [f"out of order: {line}" for line in f.out_of_order[:EXAMPLES]]
    for event_id in sorted(f.parked & f.handled_ids)[:EXAMPLES]:
        lines.append(f"handled and parked: {where(f, event_id)} ({event_id})")
    return lines


async def collect(pool: asyncpg.Pool, wlog: WriteLog) -> Findings:
    events = await pool.fetch(
        "SELECT id, stream_id, version, coalesce((data->>'poison')::boolean, false) AS poison "
        "FROM eventstore.events WHERE type = $1",
        EVENT_TYPE,
    )
    rows = await pool.fetch(
        "SELECT event_id, stream_id, version FROM bench_stress.handled ORDER BY id"
    )
    parked = await list_parked(pool, consumer=CONSUMER)
    findings = Findings(
        written={
            r["id"]: Written(r["stream_id"], int(r["version"]), bool(r["poison"])) for r in events
        },
        handled=Counter(r["event_id"] for r in rows),
        parked={p.event_id for p in parked},
        out_of_order=out_of_order(rows),
        wlog=wlog,
    )
    findings.examples = await examples(pool, findings)
    return findings


@dataclass
class Outcome:
    """Everything the report needs besides the findings."""

    plan: Plan
    seconds: float
    drained: bool
    drain_s: float
    ready: bool
    fleet: Fleet
    servers: Servers
    bus: BusState
    chaos_error: str = ""
    probes: list[Probe] = field(default_factory=list)
    highlights: list[tuple[str, int]] = field(default_factory=list)
    injected: int = 0


# --- the run ----------------------------------------------------------------------------------


async def run_chaos(
    deps: Deps, servers: Servers, fleet: Fleet, plan: Plan, rng: random.Random, t0: float
) -> tuple[WriteLog, str, float]:
    """Writers, kills and server restarts for plan.seconds; (write log, chaos error, seconds)."""
    began = time.monotonic()
    deadline = began + plan.seconds
    wlog = WriteLog()
    stop_kills = asyncio.Event()
    restarts = asyncio.create_task(restart_servers(servers, plan, began, t0))
    killer = asyncio.create_task(fleet.kill_at_random(stop_kills, plan, rng))
    writers = [
        writer(i, deps.store, plan, wlog, deadline, rng.randrange(2**32))
        for i in range(plan.writers)
    ]
    error = ""
    try:
        await asyncio.gather(*writers)
        await asyncio.wait_for(asyncio.shield(restarts), timeout=120)
    except Exception as exc:
        error = f"chaos failed: {exc!r}"
        print(error, flush=True)
    finally:
        stop_kills.set()
        restarts.cancel()
        await asyncio.gather(killer, restarts, return_exceptions=True)
    return wlog, error, time.monotonic() - began


async def exercise(
    deps: Deps, servers: Servers, fleet: Fleet, plan: Plan
) -> tuple[Outcome, WriteLog]:
    rng = random.Random(plan.seed)
    began = time.monotonic()
    stop = asyncio.Event()
    await fleet.start_all()
    supervisor = asyncio.create_task(fleet.supervise(stop, rng))
    reporter = asyncio.create_task(progress(deps, servers, fleet, stop, began))
    try:
        ready = await wait_ready(deps)
        if not ready:
            print("workers not ready (no consumer or no relay leader); writing anyway", flush=True)
        wlog, error, seconds = await run_chaos(deps, servers, fleet, plan, rng, began)
        print(f"[{time.monotonic() - began:5.0f}s] writers stopped; draining", flush=True)
        drained, drain_s = await drain(deps, plan.drain_timeout_s)
        probes = await probe_each(deps, fleet, plan, wlog) if len(fleet.workers) > 1 else []
        await drain(deps, plan.drain_timeout_s if drained else 0.0)  # the probes' events
        await asyncio.sleep(SETTLE_S)  # let a late duplicate or redelivery show itself
        bus = await bus_state(deps)
    finally:
        stop.set()
        await asyncio.gather(supervisor, reporter, return_exceptions=True)
        await fleet.shutdown()
    outcome = Outcome(plan, seconds, drained, drain_s, ready, fleet, servers, bus, error, probes)
    return outcome, wlog


async def run(plan: Plan, data: Path) -> tuple[Outcome, Findings]:
    servers = await Servers.start(data)
    try:
        settings = Settings(
            env="test",
            namespace=unique_name("stress"),
            data_dir=data / "app",
            database_url=servers.pg_url,
            nats_url=servers.nats_url,
            handler_max_attempts=plan.max_attempts,
        )
        deps = await open_deps(
            settings,
            database_url=servers.pg_url,
            nats_url=servers.nats_url,
            name="stress-harness",
            pool_size=plan.writers + 4,
        )
        try:
            await prepare(deps, [STRESS])
            logs = data / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            fleet = Fleet(
                argv=worker_argv(servers, settings, plan, data / "app"),
                workers=[WorkerProc(i, logs / f"w{i}.log") for i in range(1, plan.workers + 1)],
            )
            outcome, wlog = await exercise(deps, servers, fleet, plan)
            findings = await collect(deps.pool, wlog)
        finally:
            await close_deps(deps)
    finally:
        await servers.stop()
    outcome.highlights, outcome.injected = log_highlights(w.log_path for w in fleet.workers)
    return outcome, findings


# --- worker logs ------------------------------------------------------------------------------

WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"\d+")


def fold(text: str) -> str:
    """A log line with ids and numbers folded, so repeats of one message group together."""
    return _NUMBER.sub("N", _UUID.sub("<id>", text))[:200]


def log_keys(lines: Iterable[str]) -> Iterable[str]:
    """WARNING+ log lines and the final line of every traceback; injected failures as '*'."""
    in_traceback = False
    for line in lines:
        if any(name in line for name in INJECTED):
            yield "*"
            continue
        if line.startswith("Traceback"):
            in_traceback = True
            continue
        if in_traceback and line and not line[0].isspace():
            if line.startswith(("During handling", "The above exception")):
                continue
            in_traceback = False
            yield f"raised: {fold(line)}"
            continue
        match = _LOG_LINE.match(line)
        if match:
            level, logger, message = match.groups()
            yield f"{level} {logger}: {fold(message)}"


def log_highlights(paths: Iterable[Path]) -> tuple[list[tuple[str, int]], int]:
    """The most frequent notable worker log lines, and how many were injected failures."""
    counts: Counter[str] = Counter()
    for path in paths:
        with contextlib.suppress(OSError):
            counts.update(log_keys(path.read_text(errors="replace").splitlines()))
    injected = counts.pop("*", 0)
    return counts.most_common(HIGHLIGHTS), injected


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One row of the results table; `ok` None when it is not a check."""

    name: str
    value: str
    ok: bool | None = None
    warn: bool = False
    """Worth a look, but not one of the guarantees the run checks."""


def counted(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counter.most_common()) or "none"


def maybe(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def outcome_lines(f: Findings) -> list[Line]:
    dup = f.duplicated
    poison = f.poison
    both = f.parked & f.handled_ids
    random_parked = f.parked_not_handled - poison
    return [
        Line("events written (committed, in eventstore.events)", f"{len(f.written):,}"),
        Line("handled (distinct event ids)", f"{len(f.handled_ids):,}"),
        Line(
            "parked (and not handled)",
            f"{len(f.parked_not_handled):,} ({len(poison & f.parked):,} poison, "
            f"{len(random_parked):,} after random failures)",
        ),
        Line("**lost** (written - handled - parked)", f"{len(f.lost):,}", not f.lost),
        Line(
            "**duplicated** (ids handled more than once)",
            f"{len(dup):,} ({sum(dup.values()) - len(dup):,} extra rows)",
            not dup,
        ),
        Line("**out of per-stream order**", f"{len(f.out_of_order):,}", not f.out_of_order),
        Line(
            "poison events parked (none handled)",
            f"{len(poison & f.parked):,} of {len(poison):,} "
            f"({len(poison & f.handled_ids):,} handled)",
            poison <= f.parked and not poison & f.handled_ids,
        ),
        Line(
            "handled and also parked (retrying one runs its handler twice)",
            f"{len(both):,}",
            warn=bool(both),
        ),
    ]


def writer_lines(f: Findings) -> list[Line]:
    ambiguous = f.wlog.ambiguous
    return [
        Line(
            "acknowledged appends missing from the log",
            f"{len(f.acknowledged_missing):,}",
            not f.acknowledged_missing,
        ),
        Line(
            "rolled back / uncommitted events found in the log",
            f"{len(f.uncommitted_stored):,}",
            not f.uncommitted_stored,
        ),
        Line("handled events never written", f"{len(f.unknown_handled):,}", not f.unknown_handled),
        Line(
            "ambiguous events (commit unanswered): committed / not",
            f"{len(ambiguous & f.written_ids):,} / {len(ambiguous - f.written_ids):,}",
        ),
        Line("appends by mode and outcome", counted(f.wlog.appends)),
        Line("writer errors (retried)", counted(f.wlog.errors)),
    ]


def chaos_lines(o: Outcome) -> list[Line]:
    fleet, servers, bus = o.fleet, o.servers, o.bus
    exits = Counter(str(code) for code in fleet.unexpected_exits)
    return [
        Line("worker kills (SIGKILL)", f"{fleet.kills:,}"),
        Line(
            "worker restarts",
            f"{fleet.restarts:,} ({len(fleet.unexpected_exits)} after exits nobody caused"
            + (f": exit codes {counted(exits)})" if exits else ")"),
        ),
        Line("Postgres restarts", str(servers.pg_restarts), servers.pg_restarts == 1),
        Line("NATS restarts", str(servers.nats_restarts), servers.nats_restarts == 1),
        *probe_lines(o.probes),
        Line("duration of writes", f"{o.seconds:.0f} s"),
        Line(
            "drain (every written event handled or parked)",
            f"{'done' if o.drained else 'GAVE UP'} after {o.drain_s:.0f} s",
        ),
        Line(
            "after the drain: relay leaders / events not yet published",
            f"{maybe(bus.relay_leaders)} / {maybe(bus.unpublished)}",
        ),
        Line(
            "after the drain: bus messages / consumer pending / ack pending / redelivered",
            f"{maybe(bus.stream_messages)} / {maybe(bus.consumer_pending)} / "
            f"{maybe(bus.consumer_ack_pending)} / {maybe(bus.consumer_redelivered)}",
        ),
    ]


def probe_lines(probes: Sequence[Probe]) -> list[Line]:
    return [
        Line(
            f"worker {p.replica} alone after the chaos ({p.starts} start"
            f"{'' if p.starts == 1 else 's'}): probe events handled or parked",
            f"{p.settled} of {p.appended} in {p.seconds:.1f} s",
            p.ok,
        )
        for p in probes
    ]


def table(lines: Sequence[Line]) -> str:
    rows = ["| metric | value | check |", "|---|---|---|"]
    for line in lines:
        check = "" if line.ok is None else ("ok" if line.ok else "**FAIL**")
        check = "**warn**" if line.warn else check
        rows.append(f"| {line.name} | {line.value} | {check} |")
    return "\n".join(rows)


def cell(text: str) -> str:
    """Text safe inside a markdown table cell's code span."""
    return text.replace("|", "/").replace("`", "'")


def highlights_section(o: Outcome) -> str:
    lines = [
        "## Worker logs",
        "",
        f"{o.injected:,} log lines about injected handler failures (expected); the most frequent "
        "other WARNING+ lines and raised exceptions (ids and numbers folded to <id> and N):",
        "",
        "| count | line |",
        "|---:|---|",
    ]
    lines += [f"| {n:,} | `{cell(text)}` |" for text, n in o.highlights]
    if not o.highlights:
        lines.append("| 0 | (none) |")
    return "\n".join(lines)


def render(o: Outcome, f: Findings, *, quick: bool, took: float, load: float) -> tuple[str, bool]:
    """The markdown report and whether every check passed."""
    lines = outcome_lines(f) + writer_lines(f) + chaos_lines(o)
    failed = [line.name.replace("*", "") for line in lines if line.ok is False]
    if o.chaos_error:
        failed.append(o.chaos_error)
    verdict = "**PASS**" if not failed else "**FAIL**: " + "; ".join(failed)
    header = (
        f"# Stress run ({'quick' if quick else 'full'})\n\n"
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {o.plan.label}; embedded Postgres and NATS "
        f"in a temp dir; Python {platform.python_version()}; took {took:.0f} s; "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at start."
        + ("" if o.ready else " The workers were not ready when the writers started.")
        + f"\n\nVerdict: {verdict}\n\n"
    )
    found = "".join(f"- {line}\n" for line in f.examples)
    found = f"## Examples\n\n{found}\n" if found else ""
    return header + table(lines) + "\n\n" + found + highlights_section(o) + "\n", not failed


# --- the worker process -----------------------------------------------------------------------


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
    return asyncio.run(run_worker(args))


# --- the harness command ----------------------------------------------------------------------


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stress",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="`python -m bench.stress worker --help`: the worker process the harness starts",
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of writes")
    parser.add_argument("--quick", action="store_true", help="30 s of writes, faster kills")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rate", type=float, default=150.0, help="events/s of all writers")
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--poison-rate", type=float, default=0.004)
    parser.add_argument("--drain-timeout", type=float, default=None, help="seconds")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (worker logs)")
    return parser


def plan_from(ns: argparse.Namespace) -> Plan:
    quick = bool(ns.quick)
    drain = ns.drain_timeout if ns.drain_timeout is not None else (120.0 if quick else 180.0)
    return Plan(
        seconds=30.0 if quick else float(ns.seconds),
        workers=int(ns.workers),
        writers=int(ns.writers),
        streams=int(ns.streams),
        rate=float(ns.rate),
        failure_rate=float(ns.failure_rate),
        poison_rate=float(ns.poison_rate),
        kill_every=(3.0, 8.0) if quick else (4.0, 12.0),
        drain_timeout_s=float(drain),
        seed=ns.seed,
    )


def harness_main(argv: Sequence[str]) -> int:
    ns = run_parser().parse_args(argv)
    plan = plan_from(ns)
    logging.basicConfig(level=logging.WARNING, format=WORKER_LOG_FORMAT)
    # the harness's own clients complain (with tracebacks) on every planned outage; the workers'
    # logs, where these matter, are summarised in the report
    logging.getLogger("nats.aio.client").setLevel(logging.CRITICAL)
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    print(f"stress run: {plan.label}", flush=True)
    load = os.getloadavg()[0]
    began = time.monotonic()
    data = Path(tempfile.mkdtemp(prefix="olstress"))
    try:
        outcome, findings = asyncio.run(run(plan, data))
    finally:
        if ns.keep:
            print(f"kept {data} (worker logs in {data / 'logs'})", flush=True)
        else:
            shutil.rmtree(data, ignore_errors=True)
    report, passed = render(
        outcome, findings, quick=bool(ns.quick), took=time.monotonic() - began, load=load
    )
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        sys.exit(worker_main(args[1:]))
    sys.exit(harness_main(args))


if __name__ == "__main__":
    main()

"""Questions put to Postgres and NATS during and after the run: progress, drain, solo probes."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from bench.stress.fleet import Fleet, WorkerProc
from bench.stress.helpers import describe, sleep_unless_stopped
from bench.stress.plan import Plan
from bench.stress.servers import Servers
from bench.stress.service import CONSUMER, EVENT_TYPE, StressAppended
from bench.stress.writers import Append, WriteLog, write
from libs.events.envelope import new_id
from libs.events.runtime import Deps

RELAY_LOCK_KEY = 7_311_002
"""The relay's advisory lock (RELAY_LOCK in libs/events/relay.py): who is the leader."""
READY_TIMEOUT_S = 60.0
DRAIN_STALL_S = 75.0
"""Longer than the runtime's ack wait (60 s), after which a lost delivery is redelivered."""
PROGRESS_EVERY_S = 5.0
PROBE_EVENTS = 30
PROBE_TIMEOUT_S = 45.0

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

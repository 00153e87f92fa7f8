"""What the run found: the log (the truth) against what was handled and parked, and the rest."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from bench.stress.fleet import Fleet
from bench.stress.plan import Plan
from bench.stress.probes import BusState, Probe
from bench.stress.servers import Servers
from bench.stress.service import CONSUMER, EVENT_TYPE
from bench.stress.writers import WriteLog
from libs.events.consumers import list_parked

EXAMPLES = 5


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

"""Why the foundation misses its aims: suspects switched on/off one at a time (bench.ablations)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import itertools
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import latency
from bench.appends import DATA, METADATA
from bench.events import META, Sample
from bench.harness import Op, rate
from bench.prototypes import AfterCommitNotifyStore, NatsWakingStore, ProtoSystem
from bench.servers import BenchEnv, bench_env
from bench.stats import percentile
from libs.events.bus import connect_nats
from libs.events.db import create_pool, migrate, store_migrations
from libs.events.store import _APPEND, NO_STREAM, EventStore
from libs.events.system import System
from libs.events.testing import delete_namespace_streams, scratch_database, unique_name

RESULTS = Path(__file__).parent / "results" / "ablations.md"
WRITERS = 16
BATCH = 100
COLUMNS = "id, stream_id, version, type, schema_version, data, metadata"
TABLES = """
CREATE TABLE plain_text (id uuid, stream_id text, version integer, type text,
    schema_version smallint, data text, metadata text, recorded_at timestamptz DEFAULT now());
CREATE TABLE plain_jsonb (id uuid, stream_id text, version integer, type text,
    schema_version smallint, data jsonb, metadata jsonb, recorded_at timestamptz DEFAULT now());
CREATE TABLE text_notify (LIKE plain_text INCLUDING ALL);
CREATE TRIGGER n AFTER INSERT ON text_notify
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore.notify_appended();
CREATE TABLE events_like (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id uuid UNIQUE, stream_id text,
    version integer, type text, schema_version smallint, data jsonb, metadata jsonb,
    recorded_at timestamptz DEFAULT now(), tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (stream_id, version));
CREATE INDEX ON events_like (tx_id, position);
"""
Make = Callable[[], Op]
RECREATE_NOTIFY = (
    "CREATE TRIGGER events_notify AFTER INSERT ON eventstore.events "
    "FOR EACH STATEMENT EXECUTE FUNCTION eventstore.notify_appended()"
)


@dataclass(frozen=True)
class Variant:
    """One configuration: what each writer runs, with the events trigger and commit mode set."""

    label: str
    kind: str
    trigger: bool = True
    sync_commit: bool = True


APPEND_VARIANTS = [
    Variant("raw INSERT: text, no index, no trigger (baseline)", "plain_text"),
    Variant("raw INSERT, jsonb columns", "plain_jsonb"),
    Variant("copy of eventstore.events minus triggers", "events_like"),
    Variant("raw INSERT + statement NOTIFY trigger", "text_notify"),
    Variant("the store's INSERT, no Python envelope work", "append_sql"),
    Variant("EventStore.append as is", "store"),
    Variant("raw INSERT, synchronous_commit=off", "plain_text", sync_commit=False),
    Variant(
        "raw INSERT + NOTIFY trigger, synchronous_commit=off", "text_notify", sync_commit=False
    ),
    Variant("EventStore.append, synchronous_commit=off", "store", sync_commit=False),
    Variant("EventStore.append, events_notify trigger dropped", "store", trigger=False),
    Variant("... dropped + NOTIFY after commit in own async-commit txn", "after", trigger=False),
    Variant("... dropped + a core-NATS wake-up per append", "waking", trigger=False),
]


def insert(table: str, batch: int) -> str:
    cast = "::jsonb" if table in ("plain_jsonb", "events_like") else ""
    return (
        f"INSERT INTO {table} ({COLUMNS}) SELECT a, b, c, d, e, f{cast}, g{cast} FROM unnest("
        "$1::uuid[], $2::text[], $3::int[], $4::text[], $5::smallint[], $6::text[], $7::text[])"
        " AS u(a, b, c, d, e, f, g)"
        if batch > 1
        else f"INSERT INTO {table} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6{cast}, $7{cast})"
    )


def sql_op(pool: asyncpg.Pool, table: str, batch: int) -> Make:
    counter = itertools.count()
    sql = insert(table, batch)

    def make() -> Op:
        async def op() -> int:
            stream = f"s{next(counter)}"
            if batch == 1:
                await pool.execute(sql, uuid.uuid4(), stream, 1, "bench.sample", 1, DATA, METADATA)
            else:
                ids = [uuid.uuid4() for _ in range(batch)]
                versions = list(range(1, batch + 1))
                data, meta = [DATA] * batch, [METADATA] * batch
                await pool.execute(sql, ids, [stream] * batch, versions, ["x"] * batch,
                                   [1] * batch, data, meta)  # fmt: skip
            return batch

        return op

    return make


def append_sql_op(pool: asyncpg.Pool, batch: int) -> Make:
    """The store's own INSERT statement with precomputed arguments (no Python envelope work)."""
    counter = itertools.count()

    def make() -> Op:
        async def op() -> int:
            ids = [uuid.uuid4() for _ in range(batch)]
            args = (ids, ["bench.sample"] * batch, [1] * batch, [DATA] * batch, METADATA, 0)
            await pool.fetch(_APPEND, f"q{next(counter)}", *args)
            return batch

        return op

    return make


def store_op(store: EventStore, batch: int, prefix: str) -> Make:
    counter = itertools.count()
    events = [Sample(n=i) for i in range(batch)]

    def make() -> Op:
        async def op() -> int:
            stream = f"{prefix}{next(counter)}"
            await store.append(stream, events, expected_version=NO_STREAM, metadata=META)
            return batch

        return op

    return make


async def throughput_table(env: BenchEnv, batch: int, seconds: float, reps: int) -> list[str]:
    """Median events/s of each variant over `reps` interleaved rounds."""
    title = "single-event appends" if batch == 1 else f"batched appends ({batch}/call)"
    lines = [f"| {title}, {WRITERS} writers | ev/s (median) | each round |", "|---|---:|---|"]
    results: dict[str, list[float]] = {v.label: [] for v in APPEND_VARIANTS}
    async with scratch_database(env.server_url) as url:
        pool = await create_pool(url, min_size=WRITERS, max_size=WRITERS)
        nc = await connect_nats(env.nats_url, name="bench-ablations")
        try:
            await migrate(pool, store_migrations())
            await pool.execute(TABLES)
            waking = NatsWakingStore(pool, nc, f"{env.settings.namespace}.w")
            makers: dict[str, Make] = {
                "store": store_op(EventStore(pool), batch, "e"),
                "waking": store_op(waking, batch, "n"),
                "append_sql": append_sql_op(pool, batch),
                "after": store_op(AfterCommitNotifyStore(pool), batch, "a"),
            }
            trigger, sync_commit = True, True
            for _ in range(reps):
                for variant in APPEND_VARIANTS:
                    if variant.sync_commit != sync_commit:
                        sync_commit = variant.sync_commit
                        await set_sync_commit(pool, "on" if sync_commit else "off")
                    if variant.trigger != trigger:
                        trigger = variant.trigger
                        await pool.execute(
                            RECREATE_NOTIFY
                            if trigger
                            else "DROP TRIGGER events_notify ON eventstore.events"
                        )
                    if variant.kind not in makers:
                        makers[variant.kind] = sql_op(pool, variant.kind, batch)
                    make = makers[variant.kind]
                    writers = [make() for _ in range(WRITERS)]
                    value = await rate(writers, seconds=seconds, warmup=0.5)
                    results[variant.label].append(value)
        finally:
            await nc.close()
            await pool.close()
    for label, values in results.items():
        each = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(f"| {label} | {percentile(values, 50):,.0f} | {each} |")
    print("\n".join(lines), flush=True)
    return lines


async def set_sync_commit(pool: asyncpg.Pool, value: str) -> None:
    database = await pool.fetchval("SELECT current_database()")
    await pool.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = {value}')
    await pool.expire_connections()


BATCHED = functools.partial(ProtoSystem, batch_consumer=True)
LEAN = functools.partial(ProtoSystem, batch_consumer=True, lean_dispatcher=True)
BULK = functools.partial(LEAN, bulk_checkpoints=True)
LATENCY_VARIANTS: list[tuple[str, Callable[..., System]]] = [
    ("runtime as is (one transaction per message, NOTIFY trigger)", System),
    ("+ one transaction per fetched batch", BATCHED),
    ("+ 2 statements per event instead of 5 (merged checkpoint lock, no savepoint)", LEAN),
    ("+ checkpoints locked and written once per batch (2 statements per batch)", BULK),
    ("bulk, woken by NOTIFY after commit in its own async-commit txn (no trigger)",
     functools.partial(BULK, wake="after-commit")),
    ("bulk, woken by a core-NATS message (no trigger)", functools.partial(BULK, wake="nats")),
    ("bulk, relay polls every 5 ms (no trigger)", functools.partial(BULK, wake="poll")),
]  # fmt: skip


async def latency_table(env: BenchEnv, rates: list[float], seconds: float, reps: int) -> list[str]:
    """Median p50/p99 of each variant and offered rate over `reps` interleaved rounds."""
    lines = [
        "| commit→handler variant | offered | p50 | p99 | p99 of each round | delivered (late) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    runs: dict[tuple[str, float], list[latency.Latency]] = {}
    for _ in range(reps):
        for (label, make), offered in itertools.product(LATENCY_VARIANTS, rates):
            settings = env.settings.model_copy(update={"namespace": unique_name("b")})
            own = dataclasses.replace(env, settings=settings)
            try:
                async with scratch_database(env.server_url) as url:
                    result = await latency.ours(
                        own, url, rate=offered, seconds=seconds, make_system=make
                    )
            finally:
                await delete_namespace_streams(env.nats_url, settings.stream_name)
            runs.setdefault((label, offered), []).append(result)
    for (label, offered), results in runs.items():
        p50 = percentile([percentile(r.delays_ms, 50) for r in results], 50)
        p99s = [percentile(r.delays_ms, 99) for r in results]
        delivered = percentile([r.delivered_rate for r in results], 50)
        lost = sum(r.lost for r in results)
        each = ", ".join(f"{p:,.1f}" for p in p99s)
        lines.append(
            f"| {label} | {offered:.0f}/s | {p50:,.1f} ms | {percentile(p99s, 50):,.1f} ms "
            f"| {each} | {delivered:.0f}/s ({lost}) |"
        )
    print("\n".join(lines), flush=True)
    return lines


SECTIONS = ("single", "batch", "latency")


async def run(quick: bool, sections: list[str], reps: int | None) -> str:
    seconds, latency_seconds, default_reps = (2.0, 3.0, 1) if quick else (3.0, 8.0, 3)
    rounds = reps or default_reps
    parts: list[list[str]] = []
    async with bench_env() as env:
        if "single" in sections:
            parts.append(await throughput_table(env, 1, seconds, rounds))
        if "batch" in sections:
            parts.append(await throughput_table(env, BATCH, seconds, rounds))
        if "latency" in sections:
            parts.append(await latency_table(env, [500.0, 1000.0], latency_seconds, rounds))
        servers = "embedded" if env.embedded else "configured"
    header = (
        f"# Foundation ablations ({'quick' if quick else 'full'}, {servers} servers, "
        f"{rounds} interleaved rounds, load average {os.getloadavg()[0]:.2f} at the end)\n\n"
    )
    return header + "\n\n".join("\n".join(p) for p in parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ablations", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="repeatable")
    parser.add_argument("--reps", type=int, help="interleaved rounds per variant")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(run(args.quick, args.only or list(SECTIONS), args.reps))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)


if __name__ == "__main__":
    main()

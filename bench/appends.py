"""Append throughput of EventStore beside plain INSERTs into an unconstrained table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from bench.events import META, NOTE, Sample
from bench.harness import Op, rate
from bench.stats import median
from libs.events.db import create_pool, migrate, store_migrations
from libs.events.store import NO_STREAM, EventStore

RAW_TABLE = """
CREATE TABLE bench_raw (
    id uuid, stream_id text, version integer, type text, schema_version smallint,
    data text, metadata text, recorded_at timestamptz DEFAULT now()
)
"""
RAW_INSERT = (
    "INSERT INTO bench_raw (id, stream_id, version, type, schema_version, data, metadata) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
RAW_INSERT_MANY = (
    "INSERT INTO bench_raw (id, stream_id, version, type, schema_version, data, metadata) "
    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::smallint[], "
    "$6::text[], $7::text[])"
)
STREAM_LENGTH = 20
"""A single-event writer moves to a fresh stream after this many events."""

DATA = Sample(n=0, note=NOTE).model_dump_json()
METADATA = META.model_dump_json()


@dataclass
class Writer:
    """One writer's own streams: the current stream and its known version."""

    index: int
    stream: int = 0
    version: int = NO_STREAM

    def next_stream(self, events: int, per_stream: int) -> tuple[str, int]:
        if self.version + events > per_stream:
            self.stream, self.version = self.stream + 1, NO_STREAM
        return f"w{self.index}s{self.stream}", self.version


async def prepare(pool: asyncpg.Pool) -> EventStore:
    await migrate(pool, store_migrations())
    await pool.execute(RAW_TABLE)
    return EventStore(pool)


def ours(store: EventStore, index: int, batch: int) -> Op:
    writer = Writer(index)
    events = [Sample(n=i) for i in range(batch)]
    per_stream = STREAM_LENGTH if batch == 1 else batch * 10

    async def op() -> int:
        stream, version = writer.next_stream(batch, per_stream)
        await store.append(stream, events, expected_version=version, metadata=META)
        writer.version = version + batch
        return batch

    return op


def raw(pool: asyncpg.Pool, index: int, batch: int) -> Op:
    stream = f"raw{index}"

    async def one() -> int:
        await pool.execute(RAW_INSERT, uuid.uuid4(), stream, 1, "bench.sample", 1, DATA, METADATA)
        return 1

    async def many() -> int:
        await pool.execute(
            RAW_INSERT_MANY,
            [uuid.uuid4() for _ in range(batch)],
            [stream] * batch,
            list(range(1, batch + 1)),
            ["bench.sample"] * batch,
            [1] * batch,
            [DATA] * batch,
            [METADATA] * batch,
        )
        return batch

    return one if batch == 1 else many


@dataclass(frozen=True)
class Throughput:
    ours: float
    raw: float


async def measure(
    url: str, *, writers: int, batch: int, seconds: float, rounds: int, warmup: float = 0.5
) -> Throughput:
    """Median of `rounds` alternated (raw, ours) runs on one pool of `writers` connections."""
    pool = await create_pool(url, min_size=writers, max_size=writers)
    try:
        store = await prepare(pool)
        results: dict[str, list[float]] = {"raw": [], "ours": []}
        makers: dict[str, Callable[[int], Op]] = {
            "raw": lambda i: raw(pool, i + 1000 * len(results["raw"]), batch),
            "ours": lambda i: ours(store, i + 1000 * len(results["ours"]), batch),
        }
        for _ in range(rounds):
            for name, make in makers.items():
                results[name].append(
                    await rate([make(i) for i in range(writers)], seconds=seconds, warmup=warmup)
                )
        return Throughput(ours=median(results["ours"]), raw=median(results["raw"]))
    finally:
        await pool.close()

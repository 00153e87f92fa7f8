"""Foundation benchmarks: append throughput and commit-to-handler latency beside raw baselines."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import appends, latency
from bench.events import META, Sample
from bench.servers import BenchEnv, bench_env
from bench.stats import Row, markdown, percentile
from libs.events import event_loop
from libs.events.envelope import Envelope, new_id
from libs.events.store import dump_envelope
from libs.events.testing import scratch_database

RESULTS = Path(__file__).parent / "results" / "foundation.md"
WRITERS = 16
BATCH = 100
RATES = (500.0, 1000.0, 2000.0)
"""Offered event rates of the commit→handler runs (the pipeline of later issues multiplies
every event by four or five)."""
APPEND_AIM = 0.5
P99_AIM_MS = 20.0
P99_AIM_RATE = 1000.0
"""The p99 aim holds up to this rate; above it the row shows whether the rate is sustained."""


@dataclass(frozen=True)
class Plan:
    seconds: float
    rounds: int
    latency_seconds: float


FULL = Plan(seconds=5.0, rounds=3, latency_seconds=10.0)
QUICK = Plan(seconds=2.0, rounds=1, latency_seconds=3.0)


def envelope_size() -> int:
    """Bytes of one published bench envelope, so the raw NATS baseline carries as much."""
    sample = Sample(n=1)
    envelope = Envelope(
        id=new_id(),
        stream_id="lat1",
        version=1,
        type=sample.event_type,
        schema_version=1,
        data=sample.model_dump(mode="json"),
        metadata=META,
        recorded_at=datetime.now(UTC),
        position=1,
    )
    return len(dump_envelope(envelope))


async def throughput_rows(env: BenchEnv, plan: Plan) -> list[Row]:
    rows = []
    for batch, name in [(1, "single-event appends"), (BATCH, f"batched appends ({BATCH}/call)")]:
        async with scratch_database(env.server_url) as url:
            result = await appends.measure(
                url, writers=WRITERS, batch=batch, seconds=plan.seconds, rounds=plan.rounds
            )
        ratio = result.ours / result.raw
        aim = f">= {APPEND_AIM:.0%} of raw"  # both: issue 10 asks it of batched appends too
        met = ratio >= APPEND_AIM
        rows.append(Row(f"{name}, {WRITERS} writers", result.ours, result.raw, "ev/s", aim, met))
    return rows


async def latency_rows(env: BenchEnv, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    for rate in RATES:
        rows += await latency_rows_at(env, plan, rate)
    return rows


async def latency_rows_at(env: BenchEnv, plan: Plan, rate: float) -> list[Row]:
    async with scratch_database(env.server_url) as url:
        ours = await latency.ours(env, url, rate=rate, seconds=plan.latency_seconds)
    raw = await latency.raw(env, rate=rate, seconds=plan.latency_seconds, size=envelope_size())
    at = f"@ {rate:.0f}/s"
    p99 = percentile(ours.delays_ms, 99)
    return [
        Row(
            f"commit→handler p50 {at}",
            percentile(ours.delays_ms, 50),
            percentile(raw.delays_ms, 50),
            "ms",
        ),
        Row(
            f"commit→handler p99 {at}",
            p99,
            percentile(raw.delays_ms, 99),
            "ms",
            f"<= {P99_AIM_MS:.0f} ms" if rate <= P99_AIM_RATE else "",
            p99 <= P99_AIM_MS if rate <= P99_AIM_RATE else None,
        ),
        Row(
            f"commit→handler max {at}",
            max(ours.delays_ms, default=float("nan")),
            max(raw.delays_ms, default=float("nan")),
            "ms",
        ),
        Row(
            f"appends/publishes achieved (offered {rate:.0f}/s)",
            ours.sent_rate,
            raw.sent_rate,
            "ev/s",
        ),
        Row(
            f"delivered to handler {at}",
            ours.delivered_rate,
            raw.delivered_rate,
            "ev/s",
            f"not delivered {latency.DRAIN_TIMEOUT_S:.0f} s after the last send: "
            f"ours {ours.lost}, raw {raw.lost}",
        ),
    ]


async def server_versions(env: BenchEnv) -> str:
    conn = await asyncpg.connect(env.server_url)
    try:
        pg = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return f"Postgres {pg}"


async def run(quick: bool) -> str:
    plan = QUICK if quick else FULL
    began = time.perf_counter()
    load = os.getloadavg()[0]
    async with bench_env() as env:
        rows = await throughput_rows(env, plan)
        rows += await latency_rows(env, plan)
        versions = await server_versions(env)
        servers = "embedded" if env.embedded else "configured (OPSLEDGER_*_URL)"
    header = (
        f"# Foundation benchmarks ({'quick' if quick else 'full'})\n\n"
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; servers: {servers}; {versions}; "
        f"Python {platform.python_version()}; {plan.seconds:.0f} s x {plan.rounds} rounds per "
        f"append benchmark (median), {plan.latency_seconds:.0f} s of latency; "
        f"took {time.perf_counter() - began:.0f} s; {os.cpu_count()} CPUs, load average "
        f"{load:.2f} at start (other processes on the host skew every number).\n\n"
    )
    return header + markdown(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.foundation", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = event_loop.run(run(args.quick))
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)


if __name__ == "__main__":
    main()

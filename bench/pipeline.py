"""The automation pipeline: tickets created through the gateway with 20 enabled rules, 5 of which
match each ticket, measured from `ticket.created` to each action's `ticket.tagged` (both times
recorded by Postgres, so one clock), at fixed offered rates; then jobs/s at saturation. Beside
them, in the same run: a raw JetStream three-hop chain (publish -> consume -> publish -> consume
-> publish -> consume) at the same rates, and raw Postgres commits/s.

    .venv/bin/python -m bench.pipeline [--quick] [--processes]

`--processes` runs each service as its own `opsledger run SERVICE` process (as Compose does);
on a two-core machine that is slower than one process (five processes and Postgres share the
cores), so the default keeps the services in the bench's process.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import appends
from bench.harness import paced, rate
from bench.pipeline_raw import three_hop_chain
from bench.servers import BenchEnv, bench_env
from bench.stack import as_processes, in_process
from bench.stats import Row, markdown, percentile
from libs.events import event_loop
from libs.events.db import create_pool
from libs.events.settings import parse_rate_limits
from libs.events.testing import scratch_database
from services.executor.app import SERVICE as EXECUTOR
from services.gateway.app import SERVICE as GATEWAY
from services.people.app import SERVICE as PEOPLE
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS

RATES = (25.0, 50.0, 100.0)
RULES_TOTAL, RULES_MATCHING = 20, 5
P99_AIM_MS, P99_AIM_RATE = 50.0, 100.0
JOBS_AIM = 500.0
BURST = 400
CONCURRENCY = 16
SETTLE_TIMEOUT_S = 120.0
RESULTS = Path(__file__).parent / "results" / "pipeline.md"
TERMINAL = ("job.succeeded", "job.dead_lettered", "job.skipped")


def rule(index: int) -> dict[str, Any]:
    """Rule `index`: the first RULES_MATCHING match every bench ticket and tag it `m<i>`."""
    matching = index < RULES_MATCHING
    value = "incident" if matching else f"never-{index}"
    return {
        "name": f"bench rule {index}",
        "enabled": True,
        "mode": "active",
        "trigger": {"event": "ticket.created"},
        "conditions": {"all": [{"field": "type", "op": "eq", "value": value}]},
        "actions": [{"type": "add_tag", "params": {"tag": f"m{index}"}}],
    }


@dataclass(frozen=True)
class Acted:
    """created -> action delays (ms) of one run, and how many actions never came."""

    delays_ms: list[float]
    missing: int


async def log_end(pool: asyncpg.Pool) -> int:
    """The position of the last event stored so far."""
    return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM eventstore.events"))


async def settle_jobs(pool: asyncpg.Pool, keys: Sequence[str], *, since: int) -> int:
    """Wait until every job of these tickets is terminal; return how many are not (timeout).

    While waiting it counts only the terminal events stored after `since` (a range of the
    primary key, cheap however long the log is): an exact count joined over the whole log every
    200 ms cost Postgres a large share of a core by the burst, and slowed what it measured."""
    expected = RULES_MATCHING * len(keys)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        ended = await pool.fetchval(
            "SELECT count(*) FROM eventstore.events WHERE position > $1 AND type = ANY($2)",
            since,
            list(TERMINAL),
        )
        if ended >= expected and await terminal_jobs(pool, keys) >= expected:
            return 0
        await asyncio.sleep(0.2)
    return expected - await terminal_jobs(pool, keys)


async def terminal_jobs(pool: asyncpg.Pool, keys: Sequence[str]) -> int:
    """How many jobs of these tickets are terminal (the exact count, over the whole log)."""
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM eventstore.events q JOIN eventstore.events t "
            "ON t.stream_id = q.stream_id AND t.type = ANY($2::text[]) "
            "WHERE q.type = 'job.queued' AND q.data->>'ticket' = ANY($1::text[])",
            list(keys),
            list(TERMINAL),
        )
    )


async def acted(pool: asyncpg.Pool, keys: Sequence[str]) -> Acted:
    rows = await pool.fetch(
        "SELECT extract(epoch FROM t.recorded_at - c.recorded_at) * 1000 AS ms "
        "FROM eventstore.events c JOIN eventstore.events t "
        "ON t.stream_id = c.stream_id AND t.type = 'ticket.tagged' "
        "WHERE c.type = 'ticket.created' AND c.stream_id = ANY($1::text[])",
        [f"ticket-{key}" for key in keys],
    )
    delays = [float(r["ms"]) for r in rows]
    return Acted(delays, RULES_MATCHING * len(keys) - len(delays))


async def jobs_per_second(pool: asyncpg.Pool, keys: Sequence[str]) -> float:
    """Terminal jobs of these tickets over the span from the first queued to the last ended."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, extract(epoch FROM max(t.recorded_at) - min(q.recorded_at)) AS s "
        "FROM eventstore.events q JOIN eventstore.events t "
        "ON t.stream_id = q.stream_id AND t.type = ANY($2::text[]) "
        "WHERE q.type = 'job.queued' AND q.data->>'ticket' = ANY($1::text[])",
        list(keys),
        list(TERMINAL),
    )
    if row is None or not row["s"]:
        return float("nan")
    return float(row["n"]) / float(row["s"])


async def signed_in(base: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30.0)
    user = {"email": "bench@example.com", "name": "Bench", "password": "quartz-lantern-93-oxbow"}
    for _ in range(50):  # the people service may still be starting in its own process
        if (await client.post("/api/v1/auth/register", json=user)).status_code < 500:
            break
        await asyncio.sleep(0.2)
    login = await client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
    )
    login.raise_for_status()
    return client


async def create_tickets(client: httpx.AsyncClient, *, rate_s: float, seconds: float) -> list[str]:
    keys: list[str] = []

    async def one(_: int) -> None:
        made = await client.post(
            "/api/v1/tickets",
            json={"type": "incident", "title": "disk full", "fields": {"service": "db"}},
        )
        made.raise_for_status()
        keys.append(made.json()["key"])

    await paced(one, rate=rate_s, seconds=seconds)
    return keys


async def burst(client: httpx.AsyncClient, count: int) -> list[str]:
    keys: list[str] = []
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            queue.pop()
            made = await client.post(
                "/api/v1/tickets",
                json={"type": "incident", "title": "burst", "fields": {"service": "db"}},
            )
            made.raise_for_status()
            keys.append(made.json()["key"])

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return keys


async def raw_commits(url: str, seconds: float) -> float:
    """Single-row INSERT commits/s from CONCURRENCY writers: the floor under any job's events."""
    pool = await create_pool(url, min_size=CONCURRENCY, max_size=CONCURRENCY)
    try:
        await pool.execute(appends.RAW_TABLE)
        writers = [appends.raw(pool, i, 1) for i in range(CONCURRENCY)]
        return await rate(writers, seconds=seconds, warmup=0.5)
    finally:
        await pool.close()


def latency_rows(at: float, ours: Acted, raw_ms: list[float]) -> list[Row]:
    aim = f"<= {P99_AIM_MS:.0f} ms" if at == P99_AIM_RATE else ""
    p99 = percentile(ours.delays_ms, 99)
    return [
        Row(
            f"created -> action p50 @ {at:.0f} tickets/s",
            percentile(ours.delays_ms, 50),
            percentile(raw_ms, 50),
            "ms",
        ),
        Row(
            f"created -> action p99 @ {at:.0f} tickets/s",
            p99,
            percentile(raw_ms, 99),
            "ms",
            aim,
            p99 <= P99_AIM_MS if aim else None,
        ),
        Row(
            f"created -> action max @ {at:.0f} tickets/s",
            max(ours.delays_ms, default=float("nan")),
            max(raw_ms, default=float("nan")),
            "ms",
        ),
    ]


async def measure(
    env: BenchEnv, database_url: str, seconds: float, *, processes: bool
) -> tuple[list[Row], int, str]:
    settings = env.settings.model_copy(
        update={
            "database_url": database_url,
            "rate_limits": parse_rate_limits("tickets-user=1000000000/60"),
        }
    )
    services = [PEOPLE, GATEWAY, TICKETS, RULES, EXECUTOR]
    start = as_processes if processes else in_process
    rows: list[Row] = []
    not_terminal = 0
    async with start(settings, database_url, env.nats_url, services) as stack:
        client = await signed_in(stack.base_url)
        try:
            for index in range(RULES_TOTAL):
                (await client.post("/api/v1/rules", json=rule(index))).raise_for_status()
            since = await log_end(stack.pool)
            warm_up = await create_tickets(client, rate_s=10, seconds=1)
            await settle_jobs(stack.pool, warm_up, since=since)
            for at in RATES:
                since = await log_end(stack.pool)
                keys = await create_tickets(client, rate_s=at, seconds=seconds)
                not_terminal += await settle_jobs(stack.pool, keys, since=since)
                ours = await acted(stack.pool, keys)
                raw_ms = await three_hop_chain(env, rate_s=at, seconds=seconds)
                rows += latency_rows(at, ours, raw_ms)
            since = await log_end(stack.pool)
            keys = await burst(client, BURST)
            not_terminal += await settle_jobs(stack.pool, keys, since=since)
            jobs = await jobs_per_second(stack.pool, keys)
        finally:
            await client.aclose()
    commits = await raw_commits(database_url, seconds)
    rows.append(
        Row(
            f"jobs/s at saturation (burst of {BURST} tickets x {RULES_MATCHING} jobs)",
            jobs,
            commits,
            "jobs/s (raw: Postgres commits/s)",
            f">= {JOBS_AIM:.0f}",
            jobs >= JOBS_AIM,
        )
    )
    return rows, not_terminal, stack.shape


async def main(seconds: float, *, processes: bool) -> str:
    async with bench_env() as env, scratch_database(env.server_url) as database_url:
        rows, not_terminal, shape = await measure(env, database_url, seconds, processes=processes)
    rows.append(
        Row("jobs not terminal at the end", not_terminal, 0, "jobs", "0", not_terminal == 0)
    )
    return (
        f"# Pipeline benchmark\n\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{seconds:.0f} s per rate; {RULES_TOTAL} rules, {RULES_MATCHING} match each ticket; "
        f"servers: {'embedded' if env.embedded else 'configured'}; gateway, people, tickets, "
        f"rules and executor: {shape}"
        f"{'' if processes else ', shared with the client'}.\n\n"
        f"{markdown(rows)}\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 s per rate instead of 5")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run each service as its own `opsledger run` process instead of in the bench's",
    )
    args = parser.parse_args()
    report = event_loop.run(main(2.0 if args.quick else 5.0, processes=args.processes))
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)

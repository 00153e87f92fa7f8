"""One stress run end to end: servers, workers, chaos, drain, probes, then the findings."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from bench.stress.findings import Findings, Outcome, collect
from bench.stress.fleet import Fleet, WorkerProc, worker_argv
from bench.stress.logs import log_highlights
from bench.stress.plan import Plan
from bench.stress.probes import bus_state, drain, probe_each, progress, wait_ready
from bench.stress.servers import Servers, restart_servers
from bench.stress.service import STRESS
from bench.stress.writers import WriteLog, writer
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.system import close_deps, open_deps, prepare
from libs.events.testing import unique_name

SETTLE_S = 3.0


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

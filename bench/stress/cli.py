"""The command line: `python -m bench.stress [...]` runs the harness, `... worker` a worker."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import bench.stress
from bench.stress.logs import WORKER_LOG_FORMAT
from bench.stress.plan import Plan
from bench.stress.report import render
from bench.stress.run import run
from bench.stress.worker import worker_main

RESULTS = Path(__file__).parents[1] / "results" / "stress.md"


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stress",
        description=(bench.stress.__doc__ or "").split("\n\n")[0],
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

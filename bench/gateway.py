"""Ticket creation through the gateway (HTTP -> auth -> NATS request/reply -> tickets service ->
event store) beside a raw FastAPI route that only validates the same body, in the same run.

    .venv/bin/python -m bench.gateway [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from bench.servers import bench_env
from bench.stats import Row, markdown, percentile
from libs.contracts.tickets import TicketIn
from libs.events import event_loop
from libs.events.devstack import serve_http
from libs.events.embedded import free_port
from libs.events.settings import parse_rate_limits
from libs.events.system import System
from libs.events.testing import scratch_database
from services.gateway.app import SERVICE as GATEWAY
from services.gateway.app import create_app
from services.people.app import SERVICE as PEOPLE
from services.tickets.app import SERVICE as TICKETS

CONCURRENCY = 16
BODY = {"type": "incident", "title": "disk full on db-1", "fields": {"service": "db"}}
RESULTS = Path(__file__).parent / "results" / "gateway.md"


def raw_app() -> FastAPI:
    """The baseline: the same body validation and a 201, nothing else."""
    app = FastAPI()

    @app.post("/raw/tickets", status_code=201)
    async def create(body: TicketIn) -> dict[str, Any]:
        return {"key": "OPS-1", **body.model_dump()}

    return app


Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def load(base: str, send: Send, *, seconds: float, headers: dict[str, str]) -> list[float]:
    """CONCURRENCY workers sending back to back for `seconds`; returns each request's latency."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await send(client)
                if response.status_code != 201:
                    raise RuntimeError(f"{response.status_code}: {response.text}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return latencies


def rows(name: str, ours: list[float], raw: list[float], seconds: float) -> list[Row]:
    return [
        Row(f"{name}: requests/s", len(ours) / seconds, len(raw) / seconds, "req/s"),
        Row(
            f"{name}: p50",
            percentile(ours, 50) * 1000,
            percentile(raw, 50) * 1000,
            "ms",
        ),
        Row(
            f"{name}: p99",
            percentile(ours, 99) * 1000,
            percentile(raw, 99) * 1000,
            "ms",
        ),
    ]


async def main(seconds: float) -> str:
    async with bench_env() as env, scratch_database(env.server_url) as database_url:
        # one bench user creates thousands of tickets a minute: lift that per-user quota
        unlimited = parse_rate_limits("tickets-user=1000000000/60")
        settings = env.settings.model_copy(
            update={"database_url": database_url, "rate_limits": unlimited}
        )
        system = System(
            settings=settings,
            database_url=database_url,
            nats_url=env.nats_url,
            services=[PEOPLE, GATEWAY, TICKETS],
        )
        async with system as deps:
            app = create_app(deps)
            port, raw_port = free_port(), free_port()
            server, serving = await serve_http(app, host="127.0.0.1", port=port)
            raw_server, raw_serving = await serve_http(raw_app(), host="127.0.0.1", port=raw_port)
            try:
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base) as setup:
                    password = "quartz-lantern-93-oxbow"
                    user = {"email": "bench@example.com", "name": "Bench", "password": password}
                    await setup.post("/api/v1/auth/register", json=user)
                    await setup.post(
                        "/api/v1/auth/login", json={"email": user["email"], "password": password}
                    )
                    made = await setup.post("/api/v1/tokens", json={"name": "b", "scopes": ["api"]})
                    token = made.json()["token"]
                auth = {"Authorization": f"Bearer {token}"}

                async def ours(client: httpx.AsyncClient) -> httpx.Response:
                    return await client.post("/api/v1/tickets", json=BODY)

                async def raw(client: httpx.AsyncClient) -> httpx.Response:
                    return await client.post("/raw/tickets", json=BODY)

                await load(base, ours, seconds=1.0, headers=auth)  # warm up both paths
                await load(f"http://127.0.0.1:{raw_port}", raw, seconds=1.0, headers={})
                ours_lat = await load(base, ours, seconds=seconds, headers=auth)
                raw_lat = await load(
                    f"http://127.0.0.1:{raw_port}", raw, seconds=seconds, headers={}
                )
            finally:
                for each in (server, raw_server):
                    each.should_exit = True
                await asyncio.gather(serving, raw_serving)
    table = markdown(rows(f"create ticket, {CONCURRENCY} concurrent", ours_lat, raw_lat, seconds))
    return (
        f"# Gateway benchmark\n\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{seconds:.0f} s per side; servers: {'embedded' if env.embedded else 'configured'}; "
        "client, gateway, tickets service, NATS and Postgres share the machine's cores.\n\n"
        f"{table}\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s per side instead of 10")
    args = parser.parse_args()
    report = event_loop.run(main(3.0 if args.quick else 10.0))
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)

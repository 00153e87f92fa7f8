"""The gate and the outside world: (1) a gated rule on every ticket: created -> approval request
open, and approved -> action done (a bench approver approves each request as soon as the
approvals inbox shows it; its own reaction time is left out), and (2) an event subscription:
event stored -> subscriber received. Each beside a raw JetStream chain of as many hops, at the
same offered rate, in the same run. Times come from Postgres (`recorded_at`) and, for the
subscriber, the host's clock (the same machine).

    .venv/bin/python -m bench.gate [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from bench.harness import paced, settle
from bench.pipeline import signed_in
from bench.pipeline_raw import three_hop_chain
from bench.servers import BenchEnv, bench_env
from bench.stack import in_process
from bench.stats import Row, markdown, percentile
from libs.events import event_loop
from libs.events.settings import parse_rate_limits
from libs.events.testing import scratch_database
from services.approvals.app import SERVICE as APPROVALS
from services.executor.app import SERVICE as EXECUTOR
from services.executor.subscriptions.fanout import TICK_S
from services.gateway.app import SERVICE as GATEWAY
from services.people.app import SERVICE as PEOPLE
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS

GATED_RATE, EVENTS_RATE = 25.0, 100.0
RESULTS = Path(__file__).parent / "results" / "gate.md"
SETTLE_S = 120.0
TICKET = {"type": "incident", "title": "disk full", "fields": {"service": "db"}}
GATED = {
    "name": "bench gate",
    "trigger": {"event": "ticket.created"},
    "conditions": {"field": "title", "op": "eq", "value": "gated"},
    "actions": [{"type": "add_tag", "params": {"tag": "approved"}}],
    "approval": {"approvers": {"roles": ["operator"]}, "quorum": 1},
}


class Subscriber:
    """A local HTTP endpoint that records when each delivered event arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, str]] = {}
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("not started")
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/events"

    async def start(self) -> Subscriber:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length)
                event = json.loads(body)
                self.arrived.setdefault(str(event["id"]), (time.time(), event["recorded_at"]))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()


async def operator(client: httpx.AsyncClient, base: str) -> httpx.AsyncClient:
    """A second user, made an operator by the bench admin: the approver."""
    approver = httpx.AsyncClient(base_url=base, timeout=30.0)
    user = {"email": "approver@example.com", "name": "Approver", "password": "quartz-lantern-93"}
    made = await approver.post("/api/v1/auth/register", json=user)
    made.raise_for_status()
    changed = await client.patch(f"/api/v1/users/{made.json()['id']}", json={"role": "operator"})
    changed.raise_for_status()
    login = await approver.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
    )
    login.raise_for_status()
    return approver


@contextlib.asynccontextmanager
async def approving(approver: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Approve every pending request the inbox shows, until the block ends."""
    decided: list[str] = []

    async def loop() -> None:
        while True:
            page = await approver.get("/api/v1/approvals", params={"status": "pending"})
            for item in page.json().get("items", []):
                answer = await approver.post(f"/api/v1/approvals/{item['id']}/approve")
                if answer.status_code == 200:
                    decided.append(item["id"])
            await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    try:
        yield decided
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def create(
    client: httpx.AsyncClient, *, title: str, rate_s: float, seconds: float
) -> list[str]:
    keys: list[str] = []

    async def one(_: int) -> None:
        made = await client.post("/api/v1/tickets", json=TICKET | {"title": title})
        made.raise_for_status()
        keys.append(made.json()["key"])

    await paced(one, rate=rate_s, seconds=seconds)
    return keys


async def gated_delays(pool: asyncpg.Pool, keys: Sequence[str]) -> tuple[list[float], list[float]]:
    """(created -> request open, approved -> action done) in ms, per ticket."""
    streams = [f"ticket-{k}" for k in keys]
    rows = await pool.fetch(
        "SELECT extract(epoch FROM r.recorded_at - c.recorded_at) * 1000 AS opened, "
        "  extract(epoch FROM t.recorded_at - d.recorded_at) * 1000 AS acted "
        "FROM eventstore.events c "
        "JOIN eventstore.events r ON r.type = 'approval.requested' "
        "  AND r.data->>'ticket' = substr(c.stream_id, 8) "
        "JOIN eventstore.events d ON d.stream_id = r.stream_id AND d.type = 'approval.decided' "
        "JOIN eventstore.events t ON t.stream_id = c.stream_id AND t.type = 'ticket.tagged' "
        "WHERE c.type = 'ticket.created' AND c.stream_id = ANY($1::text[])",
        streams,
    )
    return [float(r["opened"]) for r in rows], [float(r["acted"]) for r in rows]


async def tagged(pool: asyncpg.Pool, keys: Sequence[str]) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM eventstore.events WHERE type = 'ticket.tagged' "
            "AND stream_id = ANY($1::text[])",
            [f"ticket-{k}" for k in keys],
        )
    )


def pair(name: str, ours: list[float], raw: list[float]) -> list[Row]:
    return [
        Row(f"{name} p50", percentile(ours, 50), percentile(raw, 50), "ms"),
        Row(f"{name} p99", percentile(ours, 99), percentile(raw, 99), "ms"),
    ]


async def measure(env: BenchEnv, database_url: str, seconds: float) -> list[Row]:
    settings = env.settings.model_copy(
        update={
            "database_url": database_url,
            "rate_limits": parse_rate_limits("tickets-user=1000000000/60"),
            "outbound_allow": "127.0.0.1",
        }
    )
    services = [PEOPLE, GATEWAY, TICKETS, RULES, EXECUTOR, APPROVALS]
    rows: list[Row] = []
    subscriber = await Subscriber().start()
    async with in_process(settings, database_url, env.nats_url, services) as stack:
        admin = await signed_in(stack.base_url)
        approver = await operator(admin, stack.base_url)
        try:
            (await admin.post("/api/v1/rules", json=GATED)).raise_for_status()
            async with approving(approver) as decided:
                keys = await create(admin, title="gated", rate_s=GATED_RATE, seconds=seconds)
                await settle_db(stack.pool, keys)
            opened, acted = await gated_delays(stack.pool, keys)
            at = f"@ {GATED_RATE:.0f} gated tickets/s"
            rows += pair(
                f"created -> approval request open {at}",
                opened,
                await three_hop_chain(env, rate_s=GATED_RATE, seconds=seconds, hops=1),
            )
            rows += pair(
                f"approved -> action done {at}",
                acted,
                await three_hop_chain(env, rate_s=GATED_RATE, seconds=seconds),
            )
            rows.append(Row("gated tickets acted on / approvals decided", len(acted),
                            len(decided), "tickets"))  # fmt: skip

            hook = {"name": "sub", "kind": "webhook", "url": subscriber.url,
                    "events": ["ticket.created"]}  # fmt: skip
            (await admin.post("/api/v1/webhooks", json=hook)).raise_for_status()
            await asyncio.sleep(TICK_S + 0.5)  # a new subscription is picked up within TICK_S
            start = len(subscriber.arrived)
            keys = await create(admin, title="plain", rate_s=EVENTS_RATE, seconds=seconds)
            await settle(lambda: len(subscriber.arrived) - start >= len(keys), timeout=SETTLE_S)
            delays = [
                (got - datetime.fromisoformat(at).timestamp()) * 1000
                for got, at in list(subscriber.arrived.values())[start:]
            ]
            raw = await three_hop_chain(env, rate_s=EVENTS_RATE, seconds=seconds, hops=1)
            rows += pair(f"event -> subscriber received @ {EVENTS_RATE:.0f} events/s", delays, raw)
            rows.append(Row("events delivered / created", len(delays), len(keys), "events"))
        finally:
            await admin.aclose()
            await approver.aclose()
            await subscriber.stop()
    return rows


async def settle_db(pool: asyncpg.Pool, keys: Sequence[str]) -> None:
    for _ in range(int(SETTLE_S / 0.2)):
        if await tagged(pool, keys) >= len(keys):
            return
        await asyncio.sleep(0.2)


async def main(seconds: float) -> str:
    async with bench_env() as env, scratch_database(env.server_url) as database_url:
        rows = await measure(env, database_url, seconds)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    servers = "embedded" if env.embedded else "configured"
    return (
        f"# Gate and subscriptions benchmark\n\n{when}; {seconds:.0f} s per rate; "
        f"servers: {servers}; every service in the bench's process.\n\n"
        f"{markdown(rows)}\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 s per rate instead of 5")
    args = parser.parse_args()
    report = event_loop.run(main(2.0 if args.quick else 5.0))
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)

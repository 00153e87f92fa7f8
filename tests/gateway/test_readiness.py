"""/readyz tells an operator what is wrong: a supervised task that is down (which, since when,
why) and a long transaction holding the server-wide read horizon (which backend, how long)."""

from __future__ import annotations

import asyncpg
import httpx

from libs.events.settings import Settings
from libs.events.supervisor import TaskStatus
from libs.events.task_report import tasks_down_elsewhere
from libs.events.testing import eventually, isolated_system
from tests.gateway.helpers import Gateway, running_gateway


async def test_a_task_that_is_down_makes_readiness_503_and_is_named(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    async def doomed(_: TaskStatus) -> None:
        raise ConnectionRefusedError("the integration endpoint refused us")

    gateway.deps.supervisor.start("doomed", doomed)

    async def ready() -> httpx.Response:
        return await client.get("/readyz")

    answer = await eventually(ready, until=lambda r: r.status_code == 503)
    details = answer.json()["error"]["details"]
    [down] = [t for t in details["tasks"]["down"] if t["task"] == "doomed"]
    assert down["state"] == "down"
    assert "refused us" in down["last_error"]
    assert down["since"]
    assert down["restarts"] >= 1


async def test_a_task_down_in_another_process_is_named_by_this_gateway(
    gateway: Gateway,
    client: httpx.AsyncClient,
    settings: Settings,
    database_url: str,
    nats_url: str,
) -> None:
    """Each service runs in its own process in production; any gateway replica sees them all."""

    async def doomed(_: TaskStatus) -> None:
        raise ConnectionRefusedError("smtp refused us")

    async def ready() -> httpx.Response:
        return await client.get("/readyz")

    other = isolated_system(settings, database_url, nats_url, services=(), replica="worker")
    async with other as deps:
        deps.supervisor.start("mailer", doomed)
        answer = await eventually(ready, until=lambda r: r.status_code == 503)
        [down] = [
            t for t in answer.json()["error"]["details"]["tasks"]["down"] if t["task"] == "mailer"
        ]
        assert down["process"] == deps.supervisor.process
        assert "smtp refused us" in down["last_error"]
    # a process that stopped cleanly takes its report with it
    await eventually(ready, until=lambda r: r.status_code == 200)


async def test_readiness_reports_the_running_tasks_when_all_are_up(
    client: httpx.AsyncClient,
) -> None:
    async def ready() -> httpx.Response:
        return await client.get("/readyz")

    answer = await eventually(ready, until=lambda r: r.status_code == 200)
    body = answer.json()
    assert body["tasks"]["status"] == "ok"
    assert body["tasks"]["running"] >= 3  # the relay and the gateway's two consumers
    assert body["horizon"]["status"] == "ok"


async def test_a_long_transaction_elsewhere_is_named_as_holding_the_horizon(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    tuned = settings.model_copy(update={"horizon_unready_s": 0.5})
    other = await asyncpg.connect(database_url, server_settings={"application_name": "psql"})
    try:
        async with running_gateway(tuned, database_url, nats_url) as gateway:
            client = gateway.client()
            transaction = other.transaction()
            await transaction.start()
            await other.fetchval("SELECT pg_current_xact_id()")  # takes a transaction id

            async def ready() -> httpx.Response:
                return await client.get("/readyz")

            answer = await eventually(ready, until=lambda r: r.status_code == 503)
            horizon = answer.json()["error"]["details"]["horizon"]
            assert horizon["status"] == "held"
            assert horizon["lag_seconds"] >= 0.5
            pid = await other.fetchval("SELECT pg_backend_pid()")
            assert f"backend {pid}" in horizon["held_by"]
            assert "psql" in horizon["held_by"]
            metrics = (await client.get("/metrics")).text
            assert "opsledger_read_horizon_lag_seconds" in metrics
            await transaction.rollback()
            await eventually(ready, until=lambda r: r.status_code == 200)
    finally:
        await other.close()


async def test_a_replica_still_starting_elsewhere_counts_only_once_it_is_slow_to_start(
    gateway: Gateway,
) -> None:
    pool = gateway.deps.pool
    await pool.execute(
        "INSERT INTO eventstore.task_status (process, task, state, since, restarts) VALUES "
        "('booting@h:1', 'consumer tickets', 'starting', now(), 0), "
        "('stuck@h:2', 'consumer tickets', 'starting', now() - interval '5 minutes', 0)"
    )
    down = await tasks_down_elsewhere(pool, this_process=gateway.deps.supervisor.process)
    assert [(t.process, t.state) for t in down] == [("stuck@h:2", "starting")]

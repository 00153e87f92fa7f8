"""The approvals service restarted: a request whose durable timer comes due while the service
is down expires once it is back (its job skipped, the lock released), and a request opened
before the restart is decided after it (its job runs)."""

from __future__ import annotations

import asyncio

from libs.events.settings import Settings
from libs.events.system import System
from libs.events.testing import eventually, isolated_system
from services.approvals.app import SERVICE as APPROVALS
from services.executor.app import SERVICE as EXECUTOR
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS
from tests.approvals.support import Gate
from tests.executor.conftest import FAST
from tests.tickets.support import OPERATOR, PEOPLE, seed_people


def _on_version(version: str) -> dict[str, str]:
    return {"field": "fields.version", "op": "eq", "value": version}


async def test_requests_expire_and_are_decided_across_a_restart_of_the_approvals_service(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    fast = settings.model_copy(update=FAST)
    core = isolated_system(
        fast, database_url, nats_url, services=(TICKETS, RULES, EXECUTOR), replica="core",
        timers=True,
    )  # fmt: skip

    def approvals() -> System:
        return isolated_system(fast, database_url, nats_url, services=(APPROVALS,), replica="ap")

    async with core as deps:
        gate = Gate(deps)
        await seed_people(deps)
        async with approvals():

            async def known() -> int:
                return int(await deps.pool.fetchval("SELECT count(*) FROM approvals.people"))

            await eventually(known, until=lambda n: n == len(PEOPLE))
            operators = {"roles": ["operator"]}
            await gate.rule(
                conditions=_on_version("1.0"), approval={"approvers": operators, "expires_in": "2s"}
            )
            await gate.rule(
                name="Kept", conditions=_on_version("2.0"), approval={"approvers": operators}
            )
            expiring = await gate.approval_of(await gate.deploy(version="1.0"))
            kept_key = await gate.deploy(version="2.0")
            kept = await gate.approval_of(kept_key)
        await asyncio.sleep(3)  # the first request's timer comes due while approvals is down
        assert (await gate.ticket(expiring["ticket"]))["locked"] is True

        async with approvals():
            job = await gate.job(expiring["job_ids"][0])
            assert job["state"] == "skipped" and job["skip_reason"] == "approval_expired"

            async def unlocked(key: str) -> bool:
                return (await gate.ticket(key))["locked"] is False

            assert await eventually(lambda: unlocked(expiring["ticket"]), timeout=20)
            decided = await gate.vote(kept["id"], "approve", by=OPERATOR)
            assert decided["status"] == "approved"
            assert (await gate.job(kept["job_ids"][0]))["state"] == "succeeded"
            assert await eventually(lambda: unlocked(kept_key), timeout=20)

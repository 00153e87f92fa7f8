"""Fixtures of the approval gate tests: every service a gated firing crosses (people's events
seeded directly), with the timer scheduler, on real Postgres and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.approvals.app import SERVICE as APPROVALS
from services.executor.app import SERVICE as EXECUTOR
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS
from tests.approvals.support import Gate
from tests.executor.conftest import FAST
from tests.tickets.support import PEOPLE, seed_people


@pytest.fixture
async def gate(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Gate]:
    system = isolated_system(
        settings.model_copy(update=FAST),
        database_url,
        nats_url,
        services=(TICKETS, RULES, EXECUTOR, APPROVALS),
        replica="r1",
        timers=True,
    )
    async with system as deps:
        await seed_people(deps)

        async def approvers_known() -> int:
            return int(await deps.pool.fetchval("SELECT count(*) FROM approvals.people"))

        await eventually(approvers_known, until=lambda n: n == len(PEOPLE))
        yield Gate(deps)

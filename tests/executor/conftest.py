"""Fixtures of the executor tests: tickets and the executor on real Postgres and NATS (with the
timer scheduler, which fires retries and lease expiries), users seeded, a local HTTP endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.events.settings import Settings
from libs.events.testing import isolated_system
from services.executor.app import SERVICE as EXECUTOR
from services.tickets.app import SERVICE as TICKETS
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack, seeded

FAST = {
    "executor_max_attempts": 3,
    "executor_retry_base_s": 0.2,
    "executor_retry_cap_s": 1.0,
    "executor_action_timeout_s": 3.0,
    "executor_lease_grace_s": 1.0,
    "executor_concurrency": 2,
    "outbound_allow": "127.0.0.1",
}
"""Retries in fractions of a second, two jobs at a time per replica (so replicas share the
work), the test's own loopback endpoint allowed."""


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


@pytest.fixture
async def stack(fast: Settings, database_url: str, nats_url: str) -> AsyncIterator[Stack]:
    system = isolated_system(
        fast, database_url, nats_url, services=(TICKETS, EXECUTOR), replica="r1", timers=True
    )
    async with system as deps:
        yield await seeded(deps)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = await Receiver().start()
    yield endpoint
    await endpoint.stop()

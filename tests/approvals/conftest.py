"""Fixtures of the approval gate tests: every service a gated firing crosses (people's events
seeded directly), with the timer scheduler, on real Postgres and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.events.settings import Settings
from tests.approvals.support import Gate, gate_system


@pytest.fixture
async def gate(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Gate]:
    async with gate_system(settings, database_url, nats_url) as running:
        yield running

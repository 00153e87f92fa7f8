"""Fixtures of the tickets tests: a System running the tickets service, with users seeded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.events.settings import Settings
from libs.events.system import System
from libs.events.testing import isolated_system
from services.tickets.app import SERVICE
from tests.tickets.support import Desk, seed_people


def tickets_system(settings: Settings, database_url: str, nats_url: str, name: str) -> System:
    return isolated_system(settings, database_url, nats_url, services=(SERVICE,), replica=name)


@pytest.fixture
async def desk(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Desk]:
    async with tickets_system(settings, database_url, nats_url, "r1") as deps:
        await seed_people(deps)
        yield Desk(deps)

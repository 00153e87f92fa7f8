"""Fixtures of the rules service tests: a System running the rules service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.events.settings import Settings
from tests.rules.service_support import Rules, rules_system


@pytest.fixture
async def rules(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Rules]:
    async with rules_system(settings, database_url, nats_url) as deps:
        yield Rules(deps)

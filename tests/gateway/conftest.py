"""Gateway fixtures: a running gateway per test on a scratch database, and clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from libs.events.settings import Settings
from tests.gateway.helpers import Gateway, SignedIn, login, register, running_gateway


@pytest.fixture
async def gateway(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(settings, database_url, nats_url) as running:
        yield running


@pytest.fixture
def client(gateway: Gateway) -> httpx.AsyncClient:
    return gateway.client()


@pytest.fixture
def signed_in(gateway: Gateway) -> SignedIn:
    async def make(
        email: str, *, ip: str = "127.0.0.1"
    ) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        made = gateway.client(ip)
        user = await register(made, email)
        await login(made, email)
        return made, user

    return make

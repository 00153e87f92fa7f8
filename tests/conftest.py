"""Fixtures: real Postgres and NATS (OPSLEDGER_DATABASE_URL / OPSLEDGER_NATS_URL, else embedded
servers started once per run), a fresh database and namespace for every test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.events.embedded import EmbeddedNats, EmbeddedPostgres
from libs.events.settings import Settings
from libs.events.testing import delete_namespace_streams, scratch_database, unique_name


@pytest.fixture(scope="session")
async def server_urls(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    configured = Settings()
    started: list[EmbeddedNats | EmbeddedPostgres] = []
    data = Path(tmp_path_factory.mktemp("servers"))
    try:
        database_url = configured.database_url
        if database_url is None:
            pg = EmbeddedPostgres(data)
            started.append(pg)
            database_url = await pg.start()
        nats_url = configured.nats_url
        if nats_url is None:
            ns = EmbeddedNats(data)
            started.append(ns)
            nats_url = await ns.start()
        yield database_url, nats_url
    finally:
        for server in reversed(started):
            await server.stop()


@pytest.fixture
async def database_url(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    async with scratch_database(server_urls[0]) as url:
        yield url


@pytest.fixture
def nats_url(server_urls: tuple[str, str]) -> str:
    return server_urls[1]


@pytest.fixture
async def settings(nats_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings of an isolated deployment: its own namespace (subjects and stream) and data dir."""
    value = Settings(
        env="test",
        namespace=unique_name("t"),
        data_dir=tmp_path / "data",
        handler_max_attempts=3,
        secret=os.urandom(32).hex(),
    )
    yield value
    await delete_namespace_streams(nats_url, value.stream_name)

"""Where a bench run talks to: the configured servers, else embedded ones in a temp dir."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from libs.events import gc_policy
from libs.events.embedded import EmbeddedNats, EmbeddedPostgres
from libs.events.settings import Settings
from libs.events.testing import delete_namespace_streams, unique_name


@dataclass(frozen=True)
class BenchEnv:
    """Server URLs (a scratch database is made per benchmark) and this run's own namespace."""

    server_url: str
    nats_url: str
    settings: Settings
    embedded: bool


@contextlib.asynccontextmanager
async def bench_env() -> AsyncIterator[BenchEnv]:
    """The servers and settings of a bench run. The bench's process hosts the services (and the
    raw baselines beside them), so it runs the collector as a service process does."""
    gc_policy.tune_for_service()
    configured = Settings()
    started: list[EmbeddedNats | EmbeddedPostgres] = []
    with tempfile.TemporaryDirectory(prefix="olbench") as tmp:
        data = Path(tmp)
        try:
            server_url = configured.database_url
            if server_url is None:
                pg = EmbeddedPostgres(data)
                started.append(pg)
                server_url = await pg.start()
            nats_url = configured.nats_url
            if nats_url is None:
                ns = EmbeddedNats(data)
                started.append(ns)
                nats_url = await ns.start()
            settings = Settings(namespace=unique_name("b"), data_dir=data / "app")
            try:
                yield BenchEnv(server_url, nats_url, settings, embedded=bool(started))
            finally:
                await delete_namespace_streams(nats_url, settings.stream_name)
        finally:
            for server in reversed(started):
                await server.stop()

"""What the store's attack tests share: an event of any JSON, on a registry of their own, and a
store over it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from libs.events.db import create_pool, migrate, store_migrations
from libs.events.envelope import Actor, Metadata
from libs.events.registry import DomainEvent, EventRegistry
from libs.events.store import EventStore

META = Metadata(actor=Actor.system(), service="test")
ATTACK = EventRegistry()


@ATTACK.register("attack.blob")
class Blob(DomainEvent):
    """A payload of any JSON, like the `dict[str, Any]` fields of the catalogue's events."""

    value: Any = None


@contextlib.asynccontextmanager
async def attack_store(database_url: str) -> AsyncIterator[EventStore]:
    """A store on the attack registry (each test module's `store` fixture opens one)."""
    pool = await create_pool(database_url, max_size=20)
    try:
        await migrate(pool, store_migrations())
        yield EventStore(pool, registry=ATTACK)
    finally:
        await pool.close()

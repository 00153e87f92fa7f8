"""The tickets service as the runtime starts it: its projections, RPC methods and migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from libs.events.bus import RpcHandler
from libs.events.runtime import Deps, Service
from services.tickets.api import TicketsApi
from services.tickets.handlers import TicketCommands
from services.tickets.projection import PEOPLE, TICKETS_PROJECTION

log = logging.getLogger(__name__)


def rpc_methods(deps: Deps) -> Mapping[str, RpcHandler]:
    return TicketsApi(deps).methods()


async def seed_builtin_types(deps: Deps, stop: asyncio.Event) -> None:
    """Define the built-in ticket types at startup (again on the next try if the store is down)."""
    while not stop.is_set():
        try:
            await TicketCommands(deps).seed_builtin_types()
            return
        except Exception as exc:  # the database may not be reachable yet
            log.warning("seeding built-in ticket types failed, retrying: %r", exc)
            await asyncio.sleep(1.0)


SERVICE = Service(
    name="tickets",
    consumers=[TICKETS_PROJECTION, PEOPLE],
    rpc=rpc_methods,
    migrations_dir=Path(__file__).parent / "migrations",
    background=[seed_builtin_types],
)

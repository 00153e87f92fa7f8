"""The tickets service as the runtime starts it: its projections, RPC methods and migrations."""

from __future__ import annotations

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


async def seed_builtin_types(deps: Deps) -> None:
    """Define the built-in ticket types (idempotent: a type already defined is left alone),
    once, before the first request is answered."""
    await TicketCommands(deps).seed_builtin_types()


SERVICE = Service(
    name="tickets",
    consumers=[TICKETS_PROJECTION, PEOPLE],
    rpc=rpc_methods,
    migrations_dir=Path(__file__).parent / "migrations",
    startup=[seed_builtin_types],
)

"""The people service as the runtime starts it: its projection, RPC methods and migrations."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from libs.events.bus import RpcHandler
from libs.events.runtime import Deps, Service
from services.people.api import PeopleApi
from services.people.projection import PEOPLE_PROJECTION


def rpc_methods(deps: Deps) -> Mapping[str, RpcHandler]:
    return PeopleApi(deps).methods()


SERVICE = Service(
    name="people",
    consumers=[PEOPLE_PROJECTION],
    rpc=rpc_methods,
    migrations_dir=Path(__file__).parent / "migrations",
)

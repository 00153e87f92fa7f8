"""The rules service as the runtime starts it: its one consumer (read model and firing), its RPC
methods and its migrations. `opsledger run rules` starts a replica; run it N times to scale."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from libs.events.bus import RpcHandler
from libs.events.runtime import Deps, Service
from services.rules.api import RulesApi
from services.rules.projection import RULES


def rpc_methods(deps: Deps) -> Mapping[str, RpcHandler]:
    return RulesApi(deps).methods()


SERVICE = Service(
    name="rules",
    consumers=[RULES],
    rpc=rpc_methods,
    migrations_dir=Path(__file__).parent / "migrations",
)

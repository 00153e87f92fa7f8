"""The approvals service as the runtime starts it: its read models, its intake (which opens
requests, expires and escalates them), its RPC methods and migrations. Run as many replicas as
you like: every decision is appended at the request stream's version."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from libs.events.bus import RpcHandler
from libs.events.runtime import Deps, Service
from services.approvals.api import ApprovalsApi
from services.approvals.intake import INTAKE
from services.approvals.projection import PEOPLE, REQUESTS


def rpc_methods(deps: Deps) -> Mapping[str, RpcHandler]:
    return ApprovalsApi(deps).methods()


SERVICE = Service(
    name="approvals",
    consumers=[REQUESTS, PEOPLE, *INTAKE],
    rpc=rpc_methods,
    migrations_dir=Path(__file__).parent / "migrations",
)

"""The executor as the runtime starts it: its projection, its RPC methods, its worker (which
claims and runs jobs), its lease watch (which hands a vanished executor's jobs back) and its
migrations, and its event subscriptions' fan-out and sender (services/executor/subscriptions/).
Run it as often as you like: replicas compete for jobs, and each job runs once; they share the
subscriptions and deliveries the same way (row claims in Postgres)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from libs.events.bus import RpcHandler
from libs.events.runtime import Deps, Service
from services.executor.announcements import ANNOUNCE
from services.executor.api import ExecutorApi
from services.executor.approvals import APPROVALS, RELEASED_LOCKS, WAITING_JOBS
from services.executor.leases import watch_leases
from services.executor.notifications.approvals import APPROVAL_NOTICES
from services.executor.notifications.projection import NOTIFICATIONS_PROJECTION
from services.executor.people_projection import PEOPLE_PROJECTION
from services.executor.projection import JOBS_PROJECTION, WEBHOOKS_PROJECTION
from services.executor.subscriptions.fanout import run_fanout
from services.executor.subscriptions.sender import run_sender
from services.executor.worker import run_worker


def rpc_methods(deps: Deps) -> Mapping[str, RpcHandler]:
    return ExecutorApi(deps).methods()


SERVICE = Service(
    name="executor",
    consumers=[
        JOBS_PROJECTION,
        WEBHOOKS_PROJECTION,
        APPROVALS,
        WAITING_JOBS,
        RELEASED_LOCKS,
        ANNOUNCE,
        PEOPLE_PROJECTION,
        NOTIFICATIONS_PROJECTION,
        APPROVAL_NOTICES,
    ],
    rpc=rpc_methods,
    migrations_dir=Path(__file__).parent / "migrations",
    background=[run_worker, watch_leases, run_fanout, run_sender],
)

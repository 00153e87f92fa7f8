"""The executor's RPC methods, one handler per method of `libs.contracts.jobs`: check the
caller, run a command or a read, answer with the contract's model. Jobs are for staff (and
services), webhook endpoints for admins; refusals leave through `rpc_edge`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from libs.contracts import deliveries as delivery_contract
from libs.contracts import jobs as contract
from libs.contracts import notifications as notification_contract
from libs.contracts.rules import JobOut
from libs.events.bus import RpcHandler, RpcRequest
from libs.events.contract import serve
from libs.events.rpc_guards import Guard, admin, guarded, staff
from libs.events.runtime import Deps
from services.executor.handlers import JobCommands
from services.executor.notifications.api import NotificationsApi, is_user
from services.executor.reads import ExecutorReads
from services.executor.refusals import Refusal
from services.executor.rpc_edge import edge
from services.executor.subscriptions.replay import replay
from services.executor.webhooks import WebhookCommands, shown

JOBS: Final[Guard] = (staff, "only staff see and retry jobs")
WEBHOOKS: Final[Guard] = (admin, "only admins manage webhooks")
USERS: Final[Guard] = (is_user, "notifications are a signed-in user's own")


@dataclass
class ExecutorApi:
    """RPC methods of the executor (one instance per running replica)."""

    deps: Deps

    def __post_init__(self) -> None:
        self.jobs = JobCommands(self.deps)
        self.webhooks = WebhookCommands(self.deps)
        self.reads = ExecutorReads(self.deps)
        self.notifications = NotificationsApi(self.deps)

    def methods(self) -> dict[str, RpcHandler]:
        reads = self.reads
        served = [
            (JOBS, serve(contract.JOBS_LIST, reads.jobs_list)),
            (JOBS, serve(contract.JOBS_GET, reads.jobs_get)),
            (JOBS, serve(contract.JOBS_RETRY, self.retry)),
            (WEBHOOKS, serve(contract.WEBHOOKS_LIST, reads.webhooks_list)),
            (WEBHOOKS, serve(contract.WEBHOOKS_GET, reads.webhooks_get)),
            (WEBHOOKS, serve(contract.WEBHOOKS_CREATE, self.webhook_create)),
            (WEBHOOKS, serve(contract.WEBHOOKS_UPDATE, self.webhook_update)),
            (WEBHOOKS, serve(contract.WEBHOOKS_DELETE, self.webhook_delete)),
            (WEBHOOKS, serve(delivery_contract.DELIVERIES_LIST, reads.webhook_deliveries)),
            (WEBHOOKS, serve(delivery_contract.REPLAY, self.webhook_replay)),
            (USERS, serve(notification_contract.NOTIFICATIONS_LIST, self.notifications.page)),
            (USERS, serve(notification_contract.NOTIFICATIONS_READ, self.notifications.read)),
        ]
        return {name: edge(guarded(guard, answer, _forbidden)) for guard, (name, answer) in served}

    async def retry(self, req: RpcRequest, body: contract.JobIdIn) -> JobOut:
        job = await self.jobs.retry(body.id, meta=req.metadata("executor"))
        return job.out()

    async def webhook_create(
        self, req: RpcRequest, body: contract.WebhookCreateIn
    ) -> contract.WebhookOut:
        return shown(await self.webhooks.create(body, meta=req.metadata("executor")))

    async def webhook_update(
        self, req: RpcRequest, body: contract.WebhookUpdateIn
    ) -> contract.WebhookOut:
        return shown(await self.webhooks.update(body, meta=req.metadata("executor")))

    async def webhook_delete(self, req: RpcRequest, body: contract.WebhookIdIn) -> contract.Removed:
        await self.webhooks.remove(body.id, meta=req.metadata("executor"))
        return contract.Removed(id=body.id)

    async def webhook_replay(
        self, req: RpcRequest, body: delivery_contract.ReplayIn
    ) -> delivery_contract.ReplayOut:
        return await replay(self.deps, body.id, after=body.after)


def _forbidden(message: str) -> Refusal:
    return Refusal("FORBIDDEN", message)

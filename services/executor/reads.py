"""The executor's read methods: jobs (a filtered page, one job with its history), webhook
endpoints (masked) and an endpoint's event deliveries. Every list answers one page that fits one
bus reply (`fit_page`)."""

from __future__ import annotations

from dataclasses import dataclass

from libs.contracts import deliveries as delivery_contract
from libs.contracts import jobs as contract
from libs.events.bus import RpcRequest, reply_budget
from libs.events.contract import fit_page
from libs.events.runtime import Deps
from services.executor import history, queries
from services.executor.refusals import Refusal
from services.executor.subscriptions.reads import list_deliveries
from services.executor.webhooks import shown


@dataclass
class ExecutorReads:
    deps: Deps

    @property
    def _budget(self) -> int:
        return reply_budget(self.deps.nc)

    async def jobs_list(self, req: RpcRequest, body: contract.JobsListIn) -> contract.JobPage:
        before = queries.decode_cursor(body.cursor) if body.cursor else None
        where = queries.JobFilter(state=body.state, ticket=body.ticket, rule=body.rule)
        rows = await queries.list_jobs(self.deps.pool, where, limit=body.limit + 1, before=before)
        page = fit_page([job for _, job in rows[: body.limit]], budget=self._budget)
        more = len(page) < len(rows)
        cursor = queries.encode_cursor(rows[len(page) - 1][0]) if more and page else None
        return contract.JobPage(items=page, next_cursor=cursor)

    async def jobs_get(self, req: RpcRequest, body: contract.JobIdIn) -> contract.JobDetail:
        job, stream = await history.load(self.deps.store, body.id)
        if job is None:
            raise Refusal("NOT_FOUND", "the job was not found")
        items = history.items(stream, self.deps.store.registry)
        return contract.JobDetail(**job.out().model_dump(), history=items)

    async def webhooks_list(
        self, req: RpcRequest, body: contract.WebhooksListIn
    ) -> contract.WebhookPage:
        after = queries.decode_cursor(body.cursor) if body.cursor else None
        rows = await queries.list_webhooks(self.deps.pool, limit=body.limit + 1, after=after)
        page = fit_page([shown(row) for row in rows[: body.limit]], budget=self._budget)
        more = len(page) < len(rows)
        cursor = queries.encode_cursor(rows[len(page) - 1].position) if more and page else None
        return contract.WebhookPage(items=page, next_cursor=cursor)

    async def webhooks_get(
        self, req: RpcRequest, body: contract.WebhookIdIn
    ) -> contract.WebhookOut:
        row = await queries.webhook(self.deps.pool, body.id)
        if row is None or row.removed:
            raise Refusal("NOT_FOUND", "the webhook was not found")
        return shown(row)

    async def webhook_deliveries(
        self, req: RpcRequest, body: delivery_contract.DeliveriesListIn
    ) -> delivery_contract.DeliveryPage:
        row = await queries.webhook(self.deps.pool, body.id)
        if row is None or row.removed:
            raise Refusal("NOT_FOUND", "the webhook was not found")
        before = queries.decode_cursor(body.cursor) if body.cursor else None
        rows = await list_deliveries(
            self.deps.pool, body.id, state=body.state, limit=body.limit + 1, before=before
        )
        page = fit_page([item for _, item in rows[: body.limit]], budget=self._budget)
        more = len(page) < len(rows)
        cursor = queries.encode_cursor(rows[len(page) - 1][0]) if more and page else None
        return delivery_contract.DeliveryPage(items=page, next_cursor=cursor)

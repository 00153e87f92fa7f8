"""The tickets service's read methods: ticket types, a ticket (now or as of an instant), lists,
the CSV export, comments and the audit trail; what each caller sees is `policy`'s answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from libs.contracts import tickets as contract
from libs.events.bus import RpcRequest
from libs.events.runtime import Deps
from services.tickets import queries
from services.tickets.callers import caller_of
from services.tickets.domain import normalise_tag
from services.tickets.export import to_csv
from services.tickets.handlers import TicketCommands
from services.tickets.policy import comments_seen, events_seen, requester_scope, visible
from services.tickets.queries import TicketFilter
from services.tickets.refusals import not_found
from services.tickets.state import TicketState

MAX_EXPORT: Final = 10_000
EXPORT_PAGE: Final = 500


@dataclass
class TicketReads:
    """Read methods, bound to a running service (its pool, and its commands for folding)."""

    deps: Deps
    commands: TicketCommands

    async def types_list(self, req: RpcRequest, body: contract.NoBody) -> contract.TicketTypePage:
        rows = await queries.ticket_types(self.deps.pool)
        return contract.TicketTypePage(items=[row.view() for row in rows], next_cursor=None)

    async def types_get(self, req: RpcRequest, body: contract.TypeGetIn) -> contract.TicketTypeOut:
        row = await queries.ticket_type(self.deps.pool, body.key, body.version)
        if row is None:
            raise not_found("the ticket type")
        return row.view()

    async def get(self, req: RpcRequest, body: contract.GetIn) -> contract.TicketOut:
        if body.as_of is not None:
            state, _ = await self.commands.load(body.key, until=body.as_of)
        else:
            state = await queries.ticket(self.deps.pool, body.key)
        return visible(state, caller_of(req)).out()

    def _filter(self, req: RpcRequest, body: contract.Filters) -> TicketFilter:
        return TicketFilter(
            status=body.status,
            type=body.type,
            priority=body.priority,
            assignee=body.assignee,
            tag=normalise_tag(body.tag) if body.tag else None,
            q=body.q,
            requester_id=requester_scope(caller_of(req)),
        )

    async def list(self, req: RpcRequest, body: contract.ListIn) -> contract.TicketPage:
        before = queries.decode_cursor(body.cursor) if body.cursor else None
        page = await queries.list_tickets(
            self.deps.pool, self._filter(req, body), limit=body.limit + 1, before=before
        )
        more = len(page) > body.limit
        page = page[: body.limit]
        return contract.TicketPage(
            items=[t.out() for t in page],
            next_cursor=queries.encode_cursor(page[-1].number) if more else None,
        )

    async def export(self, req: RpcRequest, body: contract.Filters) -> contract.CsvExport:
        where = self._filter(req, body)
        rows: list[TicketState] = []
        before: int | None = None
        while len(rows) < MAX_EXPORT:
            page = await queries.list_tickets(
                self.deps.pool, where, limit=EXPORT_PAGE, before=before
            )
            rows.extend(page)
            if len(page) < EXPORT_PAGE:
                break
            before = page[-1].number
        return contract.CsvExport(csv=to_csv(rows[:MAX_EXPORT]))

    async def comments(self, req: RpcRequest, body: contract.KeyIn) -> contract.CommentPage:
        by = caller_of(req)
        ticket = visible(await queries.ticket(self.deps.pool, body.key), by)
        shown = comments_seen(ticket, await queries.comments(self.deps.pool, body.key), by)
        return contract.CommentPage(items=shown, next_cursor=None)

    async def events(self, req: RpcRequest, body: contract.KeyIn) -> contract.AuditPage:
        by = caller_of(req)
        state, history = await self.commands.load(body.key)
        ticket = visible(state, by)
        items = [
            contract.AuditEvent(
                position=e.position,
                version=e.version,
                type=e.type,
                recorded_at=e.recorded_at,
                actor=e.metadata.actor.model_dump(mode="json"),
                data=e.data,
            )
            for e in events_seen(ticket, history, by)
        ]
        return contract.AuditPage(items=items, next_cursor=None)

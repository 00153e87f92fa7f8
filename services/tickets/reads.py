"""The tickets service's read methods: ticket types, a ticket (now or as of an instant), lists,
the CSV export, comments and the audit trail; what each caller sees is `policy`'s answer.

Every list answers one page that fits one bus reply: at most `limit` items, fewer when their
JSON would pass the reply budget (`fit_page`), with the cursor of the next page."""

from __future__ import annotations

from dataclasses import dataclass

from libs.contracts import tickets as contract
from libs.events.bus import RpcRequest, reply_budget
from libs.events.contract import fit_page
from libs.events.runtime import Deps
from services.tickets import cursors, queries
from services.tickets.callers import caller_of
from services.tickets.domain import normalise_tag
from services.tickets.export import csv_header, csv_row
from services.tickets.handlers import TicketCommands, ticket_stream
from services.tickets.policy import (
    comments_seen,
    events_seen,
    requester_scope,
    sees_internal,
    visible,
)
from services.tickets.queries import TicketFilter
from services.tickets.refusals import not_found
from services.tickets.state import TicketState


@dataclass
class TicketReads:
    """Read methods, bound to a running service (its pool, and its commands for folding)."""

    deps: Deps
    commands: TicketCommands

    @property
    def _budget(self) -> int:
        return reply_budget(self.deps.nc)

    async def types_list(
        self, req: RpcRequest, body: contract.TypesListIn
    ) -> contract.TicketTypePage:
        after = cursors.decode_text(body.cursor, "after") if body.cursor else None
        rows = await queries.ticket_types(self.deps.pool, after=after, limit=body.limit + 1)
        views = [row.view() for row in rows]
        page = fit_page(views[: body.limit], budget=self._budget)
        more = len(page) < len(views)
        return contract.TicketTypePage(
            items=page, next_cursor=cursors.encode_cursor("after", page[-1].key) if more else None
        )

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

    async def _tickets(
        self, req: RpcRequest, body: contract.Filters, *, limit: int, cursor: str | None
    ) -> list[TicketState]:
        """Up to `limit + 1` tickets of the list after `cursor`: a page of at most `limit`,
        and one more that says whether more follow."""
        before = queries.decode_cursor(cursor) if cursor else None
        where = self._filter(req, body)
        return await queries.list_tickets(self.deps.pool, where, limit=limit + 1, before=before)

    async def list(self, req: RpcRequest, body: contract.ListIn) -> contract.TicketPage:
        found = await self._tickets(req, body, limit=body.limit, cursor=body.cursor)
        page = fit_page([t.out() for t in found[: body.limit]], budget=self._budget)
        more = len(page) < len(found)
        last = found[len(page) - 1].number if page else 0
        return contract.TicketPage(
            items=page, next_cursor=queries.encode_cursor(last) if more else None
        )

    async def export(self, req: RpcRequest, body: contract.ExportIn) -> contract.CsvExport:
        """One page of the CSV export, fitted by the size of its CSV rows (the gateway streams
        the pages); the first page starts with the header row."""
        found = await self._tickets(req, body, limit=body.limit, cursor=body.cursor)
        rows = fit_page([csv_row(t) for t in found[: body.limit]], budget=self._budget)
        more = len(rows) < len(found)
        header = csv_header() if body.cursor is None else ""
        return contract.CsvExport(
            csv=header + "".join(rows),
            rows=len(rows),
            next_cursor=queries.encode_cursor(found[len(rows) - 1].number) if more else None,
        )

    async def comments(self, req: RpcRequest, body: contract.CommentsIn) -> contract.CommentPage:
        by = caller_of(req)
        ticket = visible(await queries.ticket(self.deps.pool, body.key), by)
        after = cursors.decode_number(body.cursor, "after") if body.cursor else 0
        rows = await queries.comments(
            self.deps.pool,
            body.key,
            with_internal=sees_internal(by),
            after=after,
            limit=body.limit + 1,
        )
        read = rows[: body.limit]
        shown = comments_seen(ticket, [r.comment for r in read], by)
        page = fit_page(shown, budget=self._budget)
        position = {r.comment.id: r.position for r in read}
        # the page read on to the last kept comment, or to the last row read
        cut = len(page) < len(shown)
        last = position[page[-1].id] if cut else (read[-1].position if read else 0)
        more = cut or len(rows) > len(read)
        cursor = cursors.encode_cursor("after", last) if more else None
        return contract.CommentPage(items=page, next_cursor=cursor)

    async def events(self, req: RpcRequest, body: contract.EventsIn) -> contract.AuditPage:
        """The audit trail by version, a page at a time (events the caller may not see are
        skipped, so a page can hold fewer than `limit`)."""
        by = caller_of(req)
        ticket = visible(await queries.ticket(self.deps.pool, body.key), by)
        after = cursors.decode_number(body.cursor, "after") if body.cursor else 0
        history = await self.deps.store.read_stream(
            ticket_stream(body.key), from_version=after + 1, to_version=after + body.limit + 1
        )
        read = history[: body.limit]
        items = [
            contract.AuditEvent(
                position=e.position,
                version=e.version,
                type=e.type,
                recorded_at=e.recorded_at,
                actor=e.metadata.actor.model_dump(mode="json"),
                data=e.data,
            )
            for e in events_seen(ticket, read, by)
        ]
        page = fit_page(items, budget=self._budget)
        cut = len(page) < len(items)
        last = page[-1].version if cut else (read[-1].version if read else 0)
        more = cut or len(history) > len(read)
        cursor = cursors.encode_cursor("after", last) if more else None
        return contract.AuditPage(items=page, next_cursor=cursor)

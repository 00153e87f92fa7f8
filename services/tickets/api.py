"""The tickets service's RPC methods, one handler per method of `libs.contracts.tickets`:
resolve the caller, run a command or a query, answer with the contract's model.

Refusals are domain `Refusal`s; `rpc_edge` turns them into the ServiceError of their code, so
bad input never reaches the store and is always a 4xx."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from libs.contracts import tickets as contract
from libs.contracts.ticket_requests import AutomationIn
from libs.events.bus import RpcHandler, RpcRequest
from libs.events.contract import serve
from libs.events.envelope import new_id
from libs.events.runtime import Deps
from services.tickets import queries
from services.tickets.callers import automation_of, caller_of, metadata_of
from services.tickets.commands import (
    Assign,
    Caller,
    ChangeStatus,
    Command,
    Comment,
    CreateTicket,
    Rate,
    Relate,
    SetPriority,
    Tag,
)
from services.tickets.domain import normalise_tag
from services.tickets.fields import TicketTypeSchema
from services.tickets.handlers import TicketCommands
from services.tickets.policy import sees_ticket
from services.tickets.reads import TicketReads
from services.tickets.refusals import Refusal, forbidden, invalid_assignee
from services.tickets.rpc_edge import as_service_error, edge

Guard = tuple[Callable[[Caller], bool], str]
GUARDS: Final[dict[str, Guard]] = {
    contract.TYPES_CREATE.name: (lambda by: by.is_admin, "only admins define ticket types"),
    contract.TYPES_UPDATE.name: (lambda by: by.is_admin, "only admins change ticket types"),
    contract.BULK.name: (lambda by: by.is_staff, "only staff run bulk operations"),
}
"""Methods only some callers may call, refused before their body is even read."""


@dataclass
class TicketsApi:
    """RPC methods of the tickets service (one instance per running replica)."""

    deps: Deps

    def __post_init__(self) -> None:
        self.commands = TicketCommands(self.deps)
        self.reads = TicketReads(self.deps, self.commands)

    def methods(self) -> dict[str, RpcHandler]:
        reads = self.reads
        served = [
            serve(contract.TYPES_LIST, reads.types_list),
            serve(contract.TYPES_GET, reads.types_get),
            serve(contract.TYPES_CREATE, self.types_create),
            serve(contract.TYPES_UPDATE, self.types_update),
            serve(contract.CREATE, self.create),
            serve(contract.GET, reads.get),
            serve(contract.LIST, reads.list),
            serve(contract.EXPORT, reads.export),
            serve(contract.CHANGE_STATUS, self.change_status),
            serve(contract.ASSIGN, self.assign),
            serve(contract.SET_PRIORITY, self.set_priority),
            serve(contract.ADD_TAG, self.add_tag),
            serve(contract.REMOVE_TAG, self.remove_tag),
            serve(contract.COMMENT, self.comment),
            serve(contract.COMMENTS, reads.comments),
            serve(contract.RELATE, self.relate),
            serve(contract.RATE, self.rate),
            serve(contract.BULK, self.bulk),
            serve(contract.EVENTS, reads.events),
        ]
        return {name: edge(self._entry(name, answer)) for name, answer in served}

    def _entry(self, name: str, answer: RpcHandler) -> RpcHandler:
        guard = GUARDS.get(name)

        async def handle(req: RpcRequest) -> object:
            by = caller_of(req)
            if guard is not None and not guard[0](by):
                raise forbidden(guard[1])
            return await answer(req)

        return handle

    async def _run(
        self, req: RpcRequest, key: str, command: Command, body: AutomationIn | None = None
    ) -> contract.TicketOut:
        meta, idempotency_key = automation_of(req, body) if body else (metadata_of(req), None)
        state, _ = await self.commands.run(key, command, meta=meta, idempotency_key=idempotency_key)
        return state.out()

    # ticket types

    async def types_create(
        self, req: RpcRequest, body: contract.TicketTypeIn
    ) -> contract.TicketTypeOut:
        schema = TicketTypeSchema.model_validate({"fields": body.fields})
        row = await self.commands.define_type(
            key=body.key, name=body.name, schema=schema, meta=metadata_of(req)
        )
        return row.view()

    async def types_update(
        self, req: RpcRequest, body: contract.ReviseTypeIn
    ) -> contract.TicketTypeOut:
        schema = TicketTypeSchema.model_validate({"fields": body.fields})
        row = await self.commands.revise_type(
            key=body.key, name=body.name, schema=schema, meta=metadata_of(req)
        )
        return row.view()

    # tickets

    async def create(self, req: RpcRequest, body: contract.TicketIn) -> contract.TicketOut:
        row = await queries.ticket_type(self.deps.pool, body.type)
        command = CreateTicket(
            type=body.type,
            schema=row.schema if row else None,
            type_version=row.version if row else 0,
            title=body.title,
            description=(body.description or "").strip() or None,
            priority=body.priority or "medium",
            fields=body.fields,
            by=caller_of(req),
        )
        return (await self.commands.create(command, meta=metadata_of(req))).out()

    async def change_status(
        self, req: RpcRequest, body: contract.ChangeStatusIn
    ) -> contract.TicketOut:
        command = ChangeStatus(status=body.status, by=caller_of(req))
        return await self._run(req, body.key, command, body)

    async def assign(self, req: RpcRequest, body: contract.AssignTicketIn) -> contract.TicketOut:
        staff = await queries.is_staff(self.deps.pool, body.assignee_id)
        command = Assign(assignee_id=body.assignee_id, assignee_is_staff=staff, by=caller_of(req))
        return await self._run(req, body.key, command, body)

    async def set_priority(
        self, req: RpcRequest, body: contract.SetPriorityIn
    ) -> contract.TicketOut:
        command = SetPriority(priority=body.priority, by=caller_of(req))
        return await self._run(req, body.key, command, body)

    async def add_tag(self, req: RpcRequest, body: contract.TagTicketIn) -> contract.TicketOut:
        command = Tag(tag=normalise_tag(body.tag), by=caller_of(req))
        return await self._run(req, body.key, command, body)

    async def remove_tag(self, req: RpcRequest, body: contract.TagTicketIn) -> contract.TicketOut:
        command = Tag(tag=normalise_tag(body.tag), by=caller_of(req), remove=True)
        return await self._run(req, body.key, command, body)

    async def comment(self, req: RpcRequest, body: contract.AddCommentIn) -> contract.CommentOut:
        by = caller_of(req)
        command = Comment(comment_id=str(new_id()), body=body.body, internal=body.internal, by=by)
        _, [written] = await self.commands.run(body.key, command, meta=metadata_of(req))
        return contract.CommentOut(
            id=written.data["comment_id"],
            author_id=written.data["author_id"],
            body=written.data["body"],
            internal=written.data["internal"],
            created_at=written.recorded_at,
        )

    async def relate(self, req: RpcRequest, body: contract.RelateIn) -> contract.TicketOut:
        by = caller_of(req)
        owner = await queries.requester_of(self.deps.pool, body.target)
        seen = sees_ticket(owner, by)
        command = Relate(relation=body.relation, target=body.target, target_visible=seen, by=by)
        return await self._run(req, body.key, command)

    async def rate(self, req: RpcRequest, body: contract.RateIn) -> contract.TicketOut:
        command = Rate(score=body.score, comment=body.comment, by=caller_of(req))
        return await self._run(req, body.key, command)

    async def bulk(self, req: RpcRequest, body: contract.BulkIn) -> contract.BulkOut:
        """Assign or close each ticket on its own: one refused (e.g. locked) leaves the rest."""
        by = caller_of(req)
        command: Command
        if body.op == "close":
            command = ChangeStatus(status="closed", by=by, via="bulk_close")
        else:
            if body.assignee_id is None:  # BulkIn refuses this; say so if it ever changes
                raise Refusal("VALIDATION_ERROR", "op 'assign' needs an assignee_id")
            if not await queries.is_staff(self.deps.pool, body.assignee_id):
                raise invalid_assignee(body.assignee_id)  # the same for every ticket
            command = Assign(assignee_id=body.assignee_id, assignee_is_staff=True, by=by)
        meta = metadata_of(req)  # one correlation id for the whole operation
        results: list[contract.BulkResult] = []
        for key in dict.fromkeys(body.keys):  # each key once, in the order given
            try:
                await self.commands.run(key, command, meta=meta)
            except Refusal as refusal:
                error = as_service_error(refusal)
                results.append(
                    contract.BulkResult(
                        key=key,
                        ok=False,
                        status=error.status,
                        error=contract.BulkError(code=error.code, message=error.message),
                    )
                )
            else:
                results.append(contract.BulkResult(key=key, ok=True, status=200))
        return contract.BulkOut(results=results)

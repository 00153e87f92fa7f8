"""The tickets service's RPC methods: validate, resolve the caller, run a command or a query.

Every refusal is a 4xx ServiceError; bad input never reaches the store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from libs.events.bus import RpcHandler, RpcRequest
from libs.events.envelope import ActorKind, Metadata, new_id
from libs.events.errors import ServiceError, not_found
from libs.events.runtime import Deps
from services.tickets import models, queries
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
from services.tickets.domain import (
    audit_visible,
    forbidden,
    invalid_assignee,
    normalise_tag,
    visible,
)
from services.tickets.export import to_csv
from services.tickets.fields import TicketTypeSchema
from services.tickets.handlers import TicketCommands
from services.tickets.queries import TicketFilter

ROLES: Final = frozenset({"requester", "operator", "admin"})
MAX_EXPORT: Final = 10_000
Json = dict[str, Any]


def _metadata(req: RpcRequest) -> Metadata:
    raw = req.correlation_id
    try:
        correlation = UUID(raw) if raw else new_id()
    except ValueError:  # a caller's own request id: keep it stable, as a UUID
        correlation = uuid5(NAMESPACE_URL, raw or "")
    return Metadata(actor=req.actor, correlation_id=correlation, service="tickets")


@dataclass
class TicketsApi:
    """RPC methods of the tickets service (one instance per running replica)."""

    deps: Deps
    _seeded: bool = False
    _seed_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.commands = TicketCommands(self.deps)

    def methods(self) -> dict[str, RpcHandler]:
        simple: dict[str, Callable[[RpcRequest, Caller], Awaitable[Any]]] = {
            "types.list": self.types_list,
            "types.get": self.types_get,
            "types.create": self.types_create,
            "types.update": self.types_update,
            "tickets.create": self.create,
            "tickets.get": self.get,
            "tickets.list": self.list,
            "tickets.export": self.export,
            "tickets.change_status": self.change_status,
            "tickets.assign": self.assign,
            "tickets.set_priority": self.set_priority,
            "tickets.add_tag": self.add_tag,
            "tickets.remove_tag": self.remove_tag,
            "tickets.comment": self.comment,
            "tickets.comments": self.comments,
            "tickets.relate": self.relate,
            "tickets.rate": self.rate,
            "tickets.bulk": self.bulk,
            "tickets.events": self.events,
        }
        return {name: self._entry(method) for name, method in simple.items()}

    def _entry(self, method: Callable[[RpcRequest, Caller], Awaitable[Any]]) -> RpcHandler:
        async def handle(req: RpcRequest) -> Any:
            models.refuse_nul(req.body)
            await self._ready()
            return await method(req, await self._caller(req))

        return handle

    async def _ready(self) -> None:
        """Seed the built-in types before the first request is answered (idempotent)."""
        if not self._seeded:
            async with self._seed_lock:
                if not self._seeded:
                    await self.commands.seed_builtin_types()
                    self._seeded = True

    async def _caller(self, req: RpcRequest) -> Caller:
        if req.role is not None and req.role not in ROLES:
            raise forbidden(f"unknown role {req.role!r}")
        automation = req.role is None or req.actor.kind in (ActorKind.SERVICE, ActorKind.SYSTEM)
        # an API token acts for its owner: tickets belong to the person, the events name the token
        user_id = req.on_behalf_of or req.actor.id
        return Caller(user_id=user_id, role=req.role, automation=automation)

    async def _run(self, req: RpcRequest, key: str, command: Command) -> Json:
        state, _ = await self.commands.run(key, command, meta=_metadata(req))
        return state.view()

    # ticket types

    async def types_list(self, req: RpcRequest, by: Caller) -> Json:
        models.Empty.model_validate(req.body)
        rows = await queries.ticket_types(self.deps.pool)
        return {"items": [row.view() for row in rows], "next_cursor": None}

    async def types_get(self, req: RpcRequest, by: Caller) -> Json:
        body = models.TypeGet.model_validate(req.body)
        row = await queries.ticket_type(self.deps.pool, body.key, body.version)
        if row is None:
            raise not_found("the ticket type")
        return row.view()

    async def types_create(self, req: RpcRequest, by: Caller) -> Json:
        if not by.is_admin:
            raise forbidden("only admins define ticket types")
        body = models.TypeCreate.model_validate(req.body)
        schema = TicketTypeSchema(fields=body.fields)
        row = await self.commands.define_type(
            key=body.key, name=body.name, schema=schema, meta=_metadata(req)
        )
        return row.view()

    async def types_update(self, req: RpcRequest, by: Caller) -> Json:
        if not by.is_admin:
            raise forbidden("only admins change ticket types")
        body = models.TypeUpdate.model_validate(req.body)
        schema = TicketTypeSchema(fields=body.fields)
        row = await self.commands.revise_type(
            key=body.key, name=body.name, schema=schema, meta=_metadata(req)
        )
        return row.view()

    # tickets: queries

    async def create(self, req: RpcRequest, by: Caller) -> Json:
        body = models.TicketCreate.model_validate(req.body)
        row = await queries.ticket_type(self.deps.pool, body.type)
        command = CreateTicket(
            type=body.type,
            schema=row.schema if row else None,
            type_version=row.version if row else 0,
            title=body.title,
            description=(body.description or "").strip() or None,
            priority=body.priority or "medium",
            fields=body.fields,
            by=by,
        )
        return (await self.commands.create(command, meta=_metadata(req))).view()

    async def get(self, req: RpcRequest, by: Caller) -> Json:
        body = models.TicketGet.model_validate(req.body)
        if body.as_of is not None:
            state, _ = await self.commands.load(body.key, until=body.as_of)
        else:
            state = await queries.ticket(self.deps.pool, body.key)
        return visible(state, by).view()

    def _filter(self, body: models.Filters, by: Caller) -> TicketFilter:
        return TicketFilter(
            status=body.status,
            type=body.type,
            priority=body.priority,
            assignee=body.assignee,
            tag=normalise_tag(body.tag) if body.tag else None,
            q=body.q,
            requester_id=None if by.is_staff else by.user_id,
        )

    async def list(self, req: RpcRequest, by: Caller) -> Json:
        body = models.ListQuery.model_validate(req.body)
        before = queries.decode_cursor(body.cursor) if body.cursor else None
        page = await queries.list_tickets(
            self.deps.pool, self._filter(body, by), limit=body.limit + 1, before=before
        )
        more = len(page) > body.limit
        page = page[: body.limit]
        return {
            "items": [t.view() for t in page],
            "next_cursor": queries.encode_cursor(page[-1].number) if more else None,
        }

    async def export(self, req: RpcRequest, by: Caller) -> Json:
        body = models.Filters.model_validate(req.body)
        where = self._filter(body, by)
        rows: list[Any] = []
        before: int | None = None
        while len(rows) < MAX_EXPORT:
            page = await queries.list_tickets(self.deps.pool, where, limit=500, before=before)
            rows.extend(page)
            if len(page) < 500:
                break
            before = page[-1].number
        return {"csv": to_csv(rows[:MAX_EXPORT])}

    async def comments(self, req: RpcRequest, by: Caller) -> Json:
        body = models.KeyBody.model_validate(req.body)
        visible(await queries.ticket(self.deps.pool, body.key), by)
        items = await queries.comments(self.deps.pool, body.key, internal=by.is_staff)
        return {"items": items, "next_cursor": None}

    async def events(self, req: RpcRequest, by: Caller) -> Json:
        body = models.KeyBody.model_validate(req.body)
        state, history = await self.commands.load(body.key)
        visible(state, by)
        items = [
            {
                "position": e.position,
                "version": e.version,
                "type": e.type,
                "recorded_at": e.recorded_at.isoformat(),
                "actor": e.metadata.actor.model_dump(mode="json"),
                "data": e.data,
            }
            for e in history
            if audit_visible(e.type, e.data, by)
        ]
        return {"items": items, "next_cursor": None}

    # tickets: commands

    async def change_status(self, req: RpcRequest, by: Caller) -> Json:
        body = models.StatusChange.model_validate(req.body)
        return await self._run(req, body.key, ChangeStatus(status=body.status, by=by))

    async def assign(self, req: RpcRequest, by: Caller) -> Json:
        body = models.AssignBody.model_validate(req.body)
        staff = await queries.is_staff(self.deps.pool, body.assignee_id)
        command = Assign(assignee_id=body.assignee_id, assignee_is_staff=staff, by=by)
        return await self._run(req, body.key, command)

    async def set_priority(self, req: RpcRequest, by: Caller) -> Json:
        body = models.PriorityBody.model_validate(req.body)
        return await self._run(req, body.key, SetPriority(priority=body.priority, by=by))

    async def add_tag(self, req: RpcRequest, by: Caller) -> Json:
        body = models.TagBody.model_validate(req.body)
        return await self._run(req, body.key, Tag(tag=normalise_tag(body.tag), by=by))

    async def remove_tag(self, req: RpcRequest, by: Caller) -> Json:
        body = models.TagBody.model_validate(req.body)
        command = Tag(tag=normalise_tag(body.tag), by=by, remove=True)
        return await self._run(req, body.key, command)

    async def comment(self, req: RpcRequest, by: Caller) -> Json:
        body = models.CommentBody.model_validate(req.body)
        command = Comment(comment_id=str(new_id()), body=body.body, internal=body.internal, by=by)
        _, [written] = await self.commands.run(body.key, command, meta=_metadata(req))
        return {
            "id": written.data["comment_id"],
            "author_id": written.data["author_id"],
            "body": written.data["body"],
            "internal": written.data["internal"],
            "created_at": written.recorded_at.isoformat(),
        }

    async def relate(self, req: RpcRequest, by: Caller) -> Json:
        body = models.RelateBody.model_validate(req.body)
        owner = await queries.requester_of(self.deps.pool, body.target)
        seen = owner is not None and (by.is_staff or owner == by.user_id)
        command = Relate(relation=body.relation, target=body.target, target_visible=seen, by=by)
        return await self._run(req, body.key, command)

    async def rate(self, req: RpcRequest, by: Caller) -> Json:
        body = models.RateBody.model_validate(req.body)
        command = Rate(score=body.score, comment=body.comment, by=by)
        return await self._run(req, body.key, command)

    async def bulk(self, req: RpcRequest, by: Caller) -> Json:
        """Assign or close each ticket on its own: one refused (e.g. locked) leaves the rest."""
        if not by.is_staff:
            raise forbidden("only staff run bulk operations")
        body = models.BulkBody.model_validate(req.body)
        command: Command
        if body.op == "close":
            command = ChangeStatus(status="closed", by=by, via="bulk_close")
        else:
            assert body.assignee_id is not None  # BulkBody requires it for "assign"
            if not await queries.is_staff(self.deps.pool, body.assignee_id):
                raise invalid_assignee(body.assignee_id)  # the same for every ticket
            command = Assign(assignee_id=body.assignee_id, assignee_is_staff=True, by=by)
        meta = _metadata(req)  # one correlation id for the whole operation
        results: list[Json] = []
        for key in dict.fromkeys(body.keys):  # each key once, in the order given
            try:
                await self.commands.run(key, command, meta=meta)
            except ServiceError as exc:
                error = {"code": exc.code, "message": exc.message}
                results.append({"key": key, "ok": False, "status": exc.status, "error": error})
            else:
                results.append({"key": key, "ok": True, "status": 200})
        return {"results": results}

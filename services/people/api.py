"""The people service's RPC methods (libs/contracts/people.py): who is asking, then a command
or a query. Every refusal is a 4xx ServiceError."""

from __future__ import annotations

from libs.contracts import people as contract
from libs.events.bus import RpcHandler, RpcRequest
from libs.events.contract import serve
from libs.events.envelope import ActorKind, Metadata
from libs.events.errors import ServiceError
from libs.events.runtime import Deps
from services.people import queries
from services.people.handlers import PeopleCommands


def _metadata(req: RpcRequest) -> Metadata:
    return req.metadata("people")


def _person(req: RpcRequest) -> str:
    """The person asking: an API token acts for its owner (the actor then names the token)."""
    return req.on_behalf_of or req.actor.id


def forbidden(message: str) -> ServiceError:
    return ServiceError(403, "FORBIDDEN", message)


class PeopleApi:
    """RPC methods of the people service (one instance per running replica)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.commands = PeopleCommands(deps)

    def methods(self) -> dict[str, RpcHandler]:
        return dict(
            [
                serve(contract.REGISTER, self.register),
                serve(contract.LOGIN, self.login),
                serve(contract.LOGOUT, self.logout),
                serve(contract.REVOKE_SESSION, self.revoke_session),
                serve(contract.CREATE_TOKEN, self.create_token),
                serve(contract.REVOKE_TOKEN, self.revoke_token),
                serve(contract.LIST_TOKENS, self.list_tokens),
                serve(contract.LIST_USERS, self.list_users),
                serve(contract.CHANGE_ROLE, self.change_role),
                serve(contract.SET_ACTIVE, self.set_active),
            ]
        )

    async def register(self, req: RpcRequest, body: contract.RegisterIn) -> contract.Registered:
        return await self.commands.register(
            email=body.email, name=body.name, password=body.password, meta=_metadata(req)
        )

    async def login(self, req: RpcRequest, body: contract.LoginIn) -> contract.SessionOpened:
        return await self.commands.login(
            email=body.email, password=body.password, meta=_metadata(req)
        )

    async def logout(self, req: RpcRequest, body: contract.LogoutIn) -> contract.Receipt:
        return await self.commands.end_session(
            session_id=body.session_id, user_id=_person(req), reason="logout", meta=_metadata(req)
        )

    async def revoke_session(self, req: RpcRequest, body: contract.SessionRef) -> contract.Receipt:
        return await self.commands.end_session(
            session_id=body.session_id, user_id=_person(req), reason="revoked", meta=_metadata(req)
        )

    async def create_token(self, req: RpcRequest, body: contract.TokenIn) -> contract.TokenIssued:
        # from a signed-in session only, so a leaked token cannot mint others that outlive it
        if req.actor.kind is not ActorKind.USER:
            raise forbidden("API tokens are created from a signed-in session")
        return await self.commands.create_token(
            owner_id=_person(req), body=body, meta=_metadata(req)
        )

    async def revoke_token(self, req: RpcRequest, body: contract.TokenRef) -> contract.Receipt:
        return await self.commands.revoke_token(
            owner_id=_person(req), token_id=str(body.token_id), meta=_metadata(req)
        )

    async def change_role(
        self, req: RpcRequest, body: contract.ChangeRoleIn
    ) -> contract.MemberChanged:
        return await self.commands.change_role(
            actor_id=_person(req), user_id=body.user_id, role=body.role, meta=_metadata(req)
        )

    async def set_active(
        self, req: RpcRequest, body: contract.SetActiveIn
    ) -> contract.MemberChanged:
        return await self.commands.set_active(
            actor_id=_person(req), user_id=body.user_id, active=body.active, meta=_metadata(req)
        )

    async def list_tokens(self, req: RpcRequest, body: contract.PageIn) -> contract.TokenPage:
        rows = await queries.list_tokens(
            self.deps.pool, user_id=_person(req), limit=body.limit, after=body.cursor
        )
        return contract.TokenPage(
            items=[r.out() for r in rows],
            next_cursor=rows[-1].id if len(rows) == body.limit else None,
        )

    async def list_users(self, req: RpcRequest, body: contract.PageIn) -> contract.UserPage:
        if req.role != "admin":
            raise forbidden("this needs the admin role")
        rows = await queries.list_users(self.deps.pool, limit=body.limit, after=body.cursor)
        return contract.UserPage(
            items=rows,
            next_cursor=rows[-1].id if len(rows) == body.limit else None,
        )

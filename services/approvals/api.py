"""The approvals service's RPC methods, one handler per method of `libs.contracts.approvals`:
staff read requests; a vote is the caller's own, except through the gateway's signed-link route,
which votes as the approver the link was issued to. Refusals leave through `rpc_edge`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from libs.contracts import approvals as contract
from libs.events.bus import RpcHandler, RpcRequest
from libs.events.contract import serve
from libs.events.envelope import ActorKind
from libs.events.rpc_guards import STAFF, Guard, guarded, is_service, staff
from libs.events.runtime import Deps
from services.approvals import queries
from services.approvals.domain import Voter
from services.approvals.handlers import ApprovalCommands
from services.approvals.refusals import Refusal
from services.approvals.rpc_edge import edge


def gateway_link(req: RpcRequest) -> bool:
    """Only the gateway, having checked a link's signature, speaks for the link's holder."""
    return is_service(req) and req.actor.id == "gateway"


READ: Final[Guard] = (staff, "only staff see approval requests")
DECIDE: Final[Guard] = (lambda req: req.actor.kind is ActorKind.USER or is_service(req),
                        "only a signed-in approver decides")  # fmt: skip
LINK: Final[Guard] = (gateway_link, "only the gateway checks signed links")


@dataclass
class ApprovalsApi:
    """RPC methods of the approvals service (one instance per running replica)."""

    deps: Deps

    def __post_init__(self) -> None:
        self.commands = ApprovalCommands.of(self.deps)

    def methods(self) -> dict[str, RpcHandler]:
        served = [
            (READ, serve(contract.APPROVALS_LIST, self.list)),
            (READ, serve(contract.APPROVALS_GET, self.get)),
            (DECIDE, serve(contract.APPROVALS_DECIDE, self.decide)),
            (LINK, serve(contract.APPROVALS_LINK_CHECK, self.link_check)),
        ]
        return {name: edge(guarded(guard, answer, _forbidden)) for guard, (name, answer) in served}

    async def list(self, _req: RpcRequest, body: contract.ApprovalsListIn) -> contract.ApprovalPage:
        return await queries.page(self.deps.pool, body)

    async def get(self, _req: RpcRequest, body: contract.ApprovalIdIn) -> contract.ApprovalOut:
        found = await queries.one(self.deps.pool, body.id)
        if found is None:
            raise Refusal("NOT_FOUND", "the approval request was not found")
        return found

    async def decide(self, req: RpcRequest, body: contract.DecideIn) -> contract.ApprovalOut:
        if body.via == "link":
            if not gateway_link(req) or body.user_id is None or body.link_id is None:
                raise Refusal("FORBIDDEN", "a link's vote comes from the gateway's link route")
            user_id = body.user_id
        else:
            if req.actor.kind is not ActorKind.USER or body.user_id not in (None, req.actor.id):
                raise Refusal("FORBIDDEN", "you vote as yourself")
            user_id = req.actor.id
        voter = await self._voter(user_id)
        if body.via == "api" and req.role not in STAFF:
            voter = Voter(user_id=voter.user_id, role=None, active=voter.active)
        decided = await self.commands.vote(
            body.id,
            voter,
            vote=body.vote,
            reason=body.reason,
            via=body.via,
            link_id=body.link_id if body.via == "link" else None,
            meta=req.metadata("approvals"),
        )
        return decided.out()

    async def link_check(
        self, _req: RpcRequest, body: contract.LinkCheckIn
    ) -> contract.LinkCheckOut:
        async with self.deps.pool.acquire() as conn:
            state = await self.commands.load(conn, body.id)
        if state is None:
            raise Refusal("NOT_FOUND", "the approval request was not found")
        why_not: str | None = None
        if state.decided is not None:
            why_not = f"the request is {state.status} already"
        elif state.link_used(body.link_id):
            why_not = "this link was used already; each link decides once"
        elif state.voted(body.user_id):
            why_not = "you have voted on this request already"
        else:
            why_not = state.may_vote(await self._voter(body.user_id))
        return contract.LinkCheckOut(approval=state.out(), usable=why_not is None, why_not=why_not)

    async def _voter(self, user_id: str) -> Voter:
        return await queries.voter(self.deps.pool, user_id)


def _forbidden(message: str) -> Refusal:
    return Refusal("FORBIDDEN", message)

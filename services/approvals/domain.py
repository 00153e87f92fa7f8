"""Approvals, pure: the request a gated firing opens, the votes that decide it, its expiry.

A request is pending until one approver rejects it, `quorum` approvers approve it, or it
expires; then it is decided once. Who may vote: a named approver, or a staff member holding one
of the named roles, never the ticket's requester (even an admin), never someone deactivated,
and each only once. A signed link decides as the approver it was issued to, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from libs.contracts.approvals import ApprovalOut, ApprovalStatus, Approvers, DecisionOut
from libs.contracts.rule_definitions import ApprovalIn
from libs.events.catalog.approvals import (
    ApprovalDecided,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalVoteCast,
    Via,
    Vote,
)
from libs.events.conditions import parse_duration
from libs.events.registry import DomainEvent
from services.approvals.refusals import Refusal


@dataclass(frozen=True)
class Voter:
    """Who asks to vote, as this service's copy of people knows them."""

    user_id: str
    role: str | None
    active: bool


@dataclass(frozen=True)
class Cast:
    vote: ApprovalVoteCast
    at: datetime


@dataclass(frozen=True)
class Approval:
    requested: ApprovalRequested
    created_at: datetime
    version: int
    votes: tuple[Cast, ...] = ()
    decided: ApprovalDecided | None = None
    decided_at: datetime | None = None
    escalated: bool = False

    @property
    def id(self) -> str:
        return self.requested.approval_id

    @property
    def status(self) -> ApprovalStatus:
        return "pending" if self.decided is None else self.decided.outcome

    def voted(self, user_id: str) -> bool:
        return any(c.vote.user_id == user_id for c in self.votes)

    def link_used(self, link_id: str) -> bool:
        return any(c.vote.link_id == link_id for c in self.votes)

    def may_vote(self, voter: Voter) -> str | None:
        """Why `voter` may not vote on this request, or None when they may."""
        asked = self.requested
        if voter.user_id == asked.requester_id:
            return "the ticket's requester never approves their own gated action"
        if not voter.active:
            return "this account is deactivated"
        named = voter.user_id in asked.users
        by_role = voter.role is not None and voter.role in asked.roles
        if not (named or by_role):
            return "you are not one of this request's approvers"
        return None

    def out(self) -> ApprovalOut:
        asked = self.requested
        return ApprovalOut(
            id=self.id,
            ticket=asked.ticket,
            incident=asked.incident,
            rule_id=asked.rule_id,
            rule_version=asked.rule_version,
            job_ids=list(asked.job_ids),
            approvers=Approvers(users=list(asked.users), roles=list(asked.roles)),
            quorum=asked.quorum,
            status=self.status,
            decisions=[
                DecisionOut(
                    user_id=c.vote.user_id,
                    decision=c.vote.vote,
                    reason=c.vote.reason,
                    at=c.at,
                    via=c.vote.via,
                )
                for c in self.votes
            ],
            expires_at=asked.expires_at,
            summary=asked.summary,
            created_at=self.created_at,
            decided_at=self.decided_at,
            outcome_reason=self.decided.reason if self.decided else None,
        )


def evolve(
    state: Approval | None, event: DomainEvent, *, version: int, at: datetime
) -> Approval | None:
    if isinstance(event, ApprovalRequested):
        return Approval(requested=event, created_at=at, version=version)
    if state is None:
        return None
    moved = replace(state, version=version)
    match event:
        case ApprovalVoteCast():
            return replace(moved, votes=(*state.votes, Cast(event, at)))
        case ApprovalDecided() if state.decided is None:
            return replace(moved, decided=event, decided_at=at)
        case ApprovalEscalated():
            return replace(moved, escalated=True)
    return moved


def fold(history: Iterable[tuple[DomainEvent, int, datetime]]) -> Approval | None:
    state: Approval | None = None
    for event, version, at in history:
        state = evolve(state, event, version=version, at=at)
    return state


@dataclass(frozen=True)
class Firing:
    """What a gated firing says about itself (from the ticket's lock or from its job)."""

    approval_id: str
    job_id: str
    rule_id: str
    rule_version: int
    rule_name: str
    actions: str
    gate: Mapping[str, Any]
    at: datetime
    ticket: str | None = None
    incident: str | None = None
    requester_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def decide_open(
    state: Approval | None, firing: Firing, *, approvers: list[str]
) -> list[DomainEvent]:
    """The request of a gated firing (announced to `approvers`); nothing when it is open."""
    if state is not None:
        return []
    gate = ApprovalIn.model_validate(dict(firing.gate))
    expires = parse_duration(gate.expires_in) or 7 * 86400  # validated when the rule was
    escalate = parse_duration(gate.escalate_after) if gate.escalate_after else None
    return [
        ApprovalRequested(
            approval_id=firing.approval_id,
            job_ids=[firing.job_id],
            rule_id=firing.rule_id,
            rule_version=firing.rule_version,
            ticket=firing.ticket,
            incident=firing.incident,
            requester_id=firing.requester_id,
            users=sorted(set(gate.approvers.users)),
            roles=sorted(set(gate.approvers.roles)),
            quorum=gate.quorum,
            expires_at=firing.at + timedelta(seconds=expires),
            escalate_at=firing.at + timedelta(seconds=escalate) if escalate else None,
            announce=list(gate.announce),
            approvers=sorted(set(approvers) - {firing.requester_id or ""}),
            summary=f"{firing.rule_name}: {firing.actions}",
        )
    ]


def decide_vote(
    state: Approval | None,
    voter: Voter,
    *,
    vote: Vote,
    reason: str | None,
    via: Via,
    link_id: str | None = None,
) -> list[DomainEvent]:
    """One approver's vote, and the decision when it completes the request."""
    if state is None:
        raise Refusal("NOT_FOUND", "the approval request was not found")
    if state.decided is not None:
        raise already_decided(state)
    if link_id is not None and state.link_used(link_id):
        raise Refusal("LINK_USED", "this link was used already; each link decides once")
    why_not = state.may_vote(voter)
    if why_not is not None:
        raise Refusal("NOT_AN_APPROVER", why_not, {"approval_id": state.id})
    if state.voted(voter.user_id):
        raise Refusal("ALREADY_DECIDED", "you have voted on this request already")
    cast = ApprovalVoteCast(
        user_id=voter.user_id, vote=vote, reason=reason, via=via, link_id=link_id
    )
    approvals = 1 + sum(1 for c in state.votes if c.vote.vote == "approve")
    if vote == "reject":
        return [cast, _decided(state, "rejected", by=voter.user_id, reason=reason)]
    if approvals >= state.requested.quorum:
        return [cast, _decided(state, "approved", by=voter.user_id, reason=reason)]
    return [cast]


def decide_expiry(state: Approval | None) -> list[DomainEvent]:
    """The durable timer's due: a request still pending expires; any other is left alone."""
    if state is None or state.decided is not None:
        return []
    return [_decided(state, "expired", by=None, reason="no decision before it expired")]


def decide_escalation(state: Approval | None, notified: list[str]) -> list[DomainEvent]:
    if state is None or state.decided is not None or state.escalated:
        return []
    return [ApprovalEscalated(notified=notified)]


def already_decided(state: Approval) -> Refusal:
    return Refusal(
        "ALREADY_DECIDED",
        f"the request is {state.status} already",
        {"approval_id": state.id, "status": state.status},
    )


def _decided(
    state: Approval, outcome: str, *, by: str | None, reason: str | None
) -> ApprovalDecided:
    return ApprovalDecided.model_validate(
        {
            "outcome": outcome,
            "job_ids": list(state.requested.job_ids),
            "ticket": state.requested.ticket,
            "by": by,
            "reason": reason,
        }
    )

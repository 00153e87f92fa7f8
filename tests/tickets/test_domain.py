"""The ticket domain without I/O: given events, when a command is decided, then events or error."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import product

import pytest

from libs.events.catalog.tickets import (
    TicketApprovalDecided,
    TicketApprovalRequested,
    TicketChangeRefused,
    TicketCreated,
    TicketStatusChanged,
)
from libs.events.errors import ServiceError
from libs.events.registry import DomainEvent
from services.tickets.commands import Caller, ChangeStatus, Comment, Rate, Tag
from services.tickets.domain import TRANSITIONS, decide, normalise_tag
from services.tickets.refusals import Refusal
from services.tickets.rpc_edge import as_service_error
from services.tickets.state import TicketState, fold

NOW = datetime(2025, 1, 1, tzinfo=UTC)
STAFF = Caller(user_id="u-oper", role="operator")
OWNER = Caller(user_id="u-alice", role="requester")
OTHER = Caller(user_id="u-bob", role="requester")
BOT = Caller(user_id="rules", role=None, automation=True)
STATUSES = list(TRANSITIONS)


def created() -> TicketCreated:
    return TicketCreated(
        key="OPS-1",
        number=1,
        type="incident",
        type_version=1,
        title="down",
        priority="medium",
        requester_id="u-alice",
        fields={},
    )


def given(*events: DomainEvent) -> TicketState:
    state = fold((e, v, NOW) for v, e in enumerate((created(), *events), start=1))
    assert state is not None
    return state


def at_status(status: str) -> TicketState:
    if status == "open":
        return given()
    return given(TicketStatusChanged(from_status="open", to_status=status, by="u-oper"))


def refusal(state: TicketState | None, command: object) -> ServiceError:
    """The domain's refusal as the RPC edge answers it (its code, and the status of that code)."""
    with pytest.raises(Refusal) as caught:
        decide(state, command)  # type: ignore[arg-type]
    return as_service_error(caught.value)


@pytest.mark.parametrize(("start", "target"), list(product(STATUSES, STATUSES)))
def test_staff_change_status_exactly_along_the_transition_table(start: str, target: str) -> None:
    command = ChangeStatus(status=target, by=STAFF)  # type: ignore[arg-type]
    if target in TRANSITIONS[start]:
        [event] = decide(at_status(start), command).events
        assert event == TicketStatusChanged(from_status=start, to_status=target, by="u-oper")
    else:
        assert refusal(at_status(start), command).code == "INVALID_TRANSITION"


@pytest.mark.parametrize("done", ["resolved", "closed"])
def test_a_requester_may_reopen_their_own_done_ticket(done: str) -> None:
    [event] = decide(at_status(done), ChangeStatus(status="open", by=OWNER)).events
    assert isinstance(event, TicketStatusChanged) and event.to_status == "open"


@pytest.mark.parametrize(("start", "target"), [("open", "resolved"), ("resolved", "closed")])
def test_a_requester_may_not_otherwise_change_status(start: str, target: str) -> None:
    error = refusal(at_status(start), ChangeStatus(status=target, by=OWNER))  # type: ignore[arg-type]
    assert (error.status, error.code) == (403, "FORBIDDEN")


def test_another_requesters_ticket_is_not_found_rather_than_forbidden() -> None:
    assert refusal(given(), Tag(tag="x", by=OTHER)).status == 404
    assert refusal(None, Tag(tag="x", by=STAFF)).status == 404


@pytest.mark.parametrize(
    "command",
    [
        ChangeStatus(status="resolved", by=STAFF),
        ChangeStatus(status="closed", by=STAFF, via="bulk_close"),
        ChangeStatus(status="resolved", by=BOT),
    ],
)
def test_status_change_while_approval_pending_is_refused_and_recorded(
    command: ChangeStatus,
) -> None:
    locked = given(TicketApprovalRequested(approval_id="a1", action="resolve"))
    decision = decide(locked, command)
    assert decision.refusal is not None and decision.refusal.code == "PENDING_APPROVAL"
    [event] = decision.events
    assert isinstance(event, TicketChangeRefused)
    assert (event.attempted, event.approval_id) == (command.status, "a1")
    assert event.via == ("automation" if command.by.automation else command.via)


def test_requester_reopen_while_locked_is_refused_as_pending_approval() -> None:
    locked = given(
        TicketStatusChanged(from_status="open", to_status="resolved", by="u-oper"),
        TicketApprovalRequested(approval_id="a1", action="reopen"),
    )
    decision = decide(locked, ChangeStatus(status="open", by=OWNER))
    assert decision.refusal is not None and decision.refusal.code == "PENDING_APPROVAL"
    assert [e.via for e in decision.events if isinstance(e, TicketChangeRefused)] == ["reopen"]


def test_a_decided_approval_releases_the_lock() -> None:
    state = given(
        TicketApprovalRequested(approval_id="a1", action="resolve"),
        TicketApprovalDecided(approval_id="a1", decision="rejected"),
    )
    assert not state.locked
    assert decide(state, ChangeStatus(status="resolved", by=STAFF)).refusal is None


def test_the_lock_holds_until_every_pending_approval_is_decided() -> None:
    state = given(
        TicketApprovalRequested(approval_id="a1", action="resolve"),
        TicketApprovalRequested(approval_id="a2", action="close"),
        TicketApprovalDecided(approval_id="a1", decision="approved"),
    )
    assert state.locked and state.view()["pending_approval"]["approval_id"] == "a2"


def test_only_staff_write_internal_comments() -> None:
    error = refusal(given(), Comment(comment_id="c", body="psst", internal=True, by=OWNER))
    assert error.status == 403


def test_rating_is_for_the_requester_of_a_done_ticket_once() -> None:
    done = at_status("resolved")
    assert refusal(at_status("open"), Rate(score=5, comment=None, by=OWNER)).code == "NOT_RESOLVED"
    assert refusal(done, Rate(score=5, comment=None, by=STAFF)).status == 403
    [rated] = decide(done, Rate(score=4, comment="ok", by=OWNER)).events
    again = fold([(created(), 1, NOW), (rated, 2, NOW)])
    assert again is not None and again.rating is not None and again.rating.score == 4
    rated_once = done.model_copy(update={"rating": again.rating})
    assert refusal(rated_once, Rate(score=1, comment=None, by=OWNER)).code == "ALREADY_RATED"


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("Prod", "prod"),
        ("  needs Review ", "needs-review"),
        ("db_migration", "db-migration"),
        ("a--b!!", "a-b"),
    ],
)
def test_tags_are_normalised_to_lowercase_slugs(raw: str, tag: str) -> None:
    assert normalise_tag(raw) == tag


@pytest.mark.parametrize("raw", ["!!!", "-", "x" * 51])
def test_tags_that_normalise_to_nothing_or_too_long_are_refused(raw: str) -> None:
    with pytest.raises(Refusal) as caught:
        normalise_tag(raw)
    assert caught.value.code == "INVALID_TAG"

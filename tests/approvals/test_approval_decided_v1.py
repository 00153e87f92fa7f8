"""`ticket.approval_decided` v2 names the rule whose request it decides: a lock released as v1
(before rules took locks) loads as one no rule took, so it fires every rule on approval.decided."""

from __future__ import annotations

from pathlib import Path

from libs.events.catalog.tickets import TicketApprovalDecided
from libs.events.envelope import Envelope
from libs.events.registry import REGISTRY

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ticket.approval_decided.v1.json"


def test_a_stored_v1_release_loads_as_one_no_rule_took() -> None:
    stored = Envelope.model_validate_json(FIXTURE.read_text())
    assert stored.schema_version == 1
    loaded = REGISTRY.load(stored)
    assert isinstance(loaded, TicketApprovalDecided)
    assert loaded.rule_id is None
    assert (loaded.approval_id, loaded.decision, loaded.decided_by) == (
        "apr-1",
        "approved",
        "u-admin",
    )
    assert TicketApprovalDecided.schema_version == 2

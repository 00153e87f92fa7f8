"""The trigger map: every contract trigger is known, fired by real (or pending) event types,
with its context, its options filtering, and the condition paths that exist for it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

import libs.events.catalog  # noqa: F401  (registers every event type)
from libs.contracts.rules import TriggerIn, TriggerName
from libs.events.registry import REGISTRY
from libs.rules.triggers import (
    PENDING_EVENT_TYPES,
    TRIGGERS,
    condition_context,
    ticket_of,
    triggers_of,
)
from tests.rules.support import TICKET, envelope, status_changed

API_MD = Path(__file__).resolve().parents[3] / "shared" / "spec" / "api.md"


def test_every_trigger_of_the_contract_is_in_the_map() -> None:
    assert set(TRIGGERS) == set(get_args(TriggerName))
    assert all(name == trigger.name for name, trigger in TRIGGERS.items())


@pytest.mark.skipif(not API_MD.exists(), reason="the shared spec is not beside the repo")
def test_the_contract_names_are_api_md_s() -> None:
    line = next(t for t in API_MD.read_text().split("- ") if t.startswith("`trigger.event`"))
    named = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", line)) - {"trigger.event"}
    assert named == set(get_args(TriggerName))


def test_every_event_type_that_fires_a_trigger_is_registered_or_pending() -> None:
    for trigger in TRIGGERS.values():
        for event_type in trigger.event_types:
            assert REGISTRY.knows(event_type) != (event_type in PENDING_EVENT_TYPES), event_type


def test_ticket_triggers_are_fired_by_the_tickets_catalogs_types() -> None:
    assert [t.name for t in triggers_of("ticket.status_changed")] == ["ticket.status_changed"]
    assert [t.name for t in triggers_of("ticket.approval_decided")] == ["approval.decided"]
    assert triggers_of("ticket.untagged") == ()
    assert triggers_of("user.registered") == ()


def test_a_status_change_exposes_from_and_to() -> None:
    event = status_changed("open", "resolved")
    trigger = TRIGGERS["ticket.status_changed"]
    assert trigger.context(event) == {"from": "open", "to": "resolved", "by": "u-ada"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, True),
        ({"to": "resolved"}, True),
        ({"from": "open"}, True),
        ({"from": "open", "to": "resolved"}, True),
        ({"to": "closed"}, False),
        ({"from": "in_progress"}, False),
        ({"from": "open", "to": "closed"}, False),
    ],
)
def test_from_and_to_filter_status_changes(options: dict[str, str], expected: bool) -> None:
    trigger = TRIGGERS["ticket.status_changed"]
    given = TriggerIn.model_validate({"event": "ticket.status_changed", **options})
    assert trigger.accepts(given, trigger.context(status_changed("open", "resolved"))) is expected


def test_sla_kind_and_stale_after_filter_their_events() -> None:
    sla = TRIGGERS["sla.breached"]
    breach = envelope("sla.breached", {"kind": "resolution", "ticket": "OPS-7"}, stream="sla-1")
    response = TriggerIn.model_validate({"event": "sla.breached", "kind": "response"})
    any_kind = TriggerIn.model_validate({"event": "sla.breached"})
    assert not sla.accepts(response, sla.context(breach))
    assert sla.accepts(any_kind, sla.context(breach))
    stale = TRIGGERS["ticket.stale"]
    waited = envelope("ticket.stale", {"after": "24h", "ticket": "OPS-7"}, stream="stale-1")
    one_day = TriggerIn.model_validate({"event": "ticket.stale", "after": "1d"})
    two_days = TriggerIn.model_validate({"event": "ticket.stale", "after": "2d"})
    assert stale.accepts(one_day, stale.context(waited))
    assert not stale.accepts(two_days, stale.context(waited))


def test_the_ticket_of_an_event_is_its_stream_or_the_ticket_it_names() -> None:
    assert ticket_of(status_changed("open", "closed", stream="ticket-OPS-42")) == "OPS-42"
    assert ticket_of(envelope("sla.warning", {"ticket": "OPS-3"}, stream="sla-9")) == "OPS-3"
    assert ticket_of(envelope("alert.received", {"name": "x"}, stream="alert-1")) is None


def test_a_dead_letter_exposes_its_job_and_rule() -> None:
    data = {"rule_id": "r-1", "ticket": "OPS-7", "attempts": 3, "last_error": "boom"}
    event = envelope("job.dead_lettered", data, stream="job-abc123")
    context = TRIGGERS["job.dead_lettered"].context(event)
    assert context == {"rule_id": "r-1", "attempts": 3, "last_error": "boom", "job_id": "abc123"}
    assert ticket_of(event) == "OPS-7"


def test_conditions_see_the_ticket_paths_and_the_trigger() -> None:
    trigger = TRIGGERS["ticket.status_changed"]
    context = condition_context(trigger, status_changed("open", "resolved"), TICKET)
    assert context["type"] == "deployment" and context["fields"]["environment"] == "production"
    assert context["trigger"]["to"] == "resolved"
    assert "key" not in context  # only the contract's ticket paths


def test_an_alert_trigger_sees_the_alert_and_no_ticket() -> None:
    trigger = TRIGGERS["alert.received"]
    alert = envelope("alert.received", {"labels": {"severity": "critical"}}, stream="alert-1")
    context = condition_context(trigger, alert, TICKET, {"incident": {"service": "db"}})
    assert context["alert"]["labels"]["severity"] == "critical"
    assert context["incident"] == {"service": "db"}
    assert "type" not in context


def test_every_trigger_describes_its_paths() -> None:
    for trigger in TRIGGERS.values():
        described = trigger.describe_paths()
        for key in trigger.context_keys:
            assert f"trigger.{key}" in described
            assert trigger.path_problem(f"trigger.{key}") is None
        assert trigger.path_problem("trigger.nope") is not None
        assert (trigger.path_problem("fields.x") is None) is trigger.on_ticket

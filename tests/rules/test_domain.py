"""The rules domain: rule versions as events, whether a version fires, the loop guard, job ids."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from libs.events.catalog.rules import (
    JobQueued,
    JobSkipped,
    RuleArchived,
    RuleCreated,
    RuleDisabled,
    RuleEnabled,
    RuleRevised,
)
from libs.events.envelope import Actor
from libs.rules.firing import DEFAULT_MAX_CAUSATION_DEPTH, RuleVersion, fires, job_id
from services.rules.domain import (
    RuleState,
    decide_archive,
    decide_create,
    decide_enable,
    decide_firing,
    decide_revise,
    fold,
)
from services.rules.refusals import Refusal
from services.rules.validation import validate_rule
from tests.rules.support import EXECUTOR, TICKET, envelope, rule, status_changed, version

CREATED = {"key": "OPS-7", "type": "deployment", "title": "Deploy", "priority": "high"}


def created_rule(**changes: Any) -> RuleState:
    events = decide_create(None, rule_id="r-1", definition=validate_rule(rule(**changes)), by="u")
    state = fold(events)
    assert state is not None
    return state


# --- writing rules -------------------------------------------------------------------------------


def test_creating_a_rule_makes_version_1_with_the_whole_definition() -> None:
    [event] = decide_create(None, rule_id="r-1", definition=validate_rule(rule()), by="u-admin")
    assert isinstance(event, RuleCreated) and event.enabled
    trigger = {"event": "ticket.created", "from": None, "to": None, "kind": None, "after": None}
    assert event.definition["trigger"] == trigger
    assert "enabled" not in event.definition
    state = fold([event])
    assert state is not None and state.version == 1 and state.live


def test_creating_a_rule_that_exists_is_refused() -> None:
    with pytest.raises(Refusal) as caught:
        decide_create(created_rule(), rule_id="r-1", definition=validate_rule(rule()), by="u")
    assert caught.value.code == "RULE_EXISTS"


def test_a_revision_is_a_new_version_carrying_the_whole_definition() -> None:
    state = created_rule()
    changed = validate_rule(rule(name="Tag production deploys"))
    [event] = decide_revise(state, definition=changed, by="u")
    assert isinstance(event, RuleRevised) and event.version == 2
    assert event.definition["name"] == "Tag production deploys"
    assert event.definition["actions"] == [{"type": "add_tag", "params": {"tag": "prod"}}]
    first = decide_create(None, rule_id="r-1", definition=validate_rule(rule()), by="u")
    after = fold([*first, event])
    assert after is not None and after.version == 2 and after.body.name == "Tag production deploys"


def test_revising_with_an_identical_definition_changes_nothing() -> None:
    assert decide_revise(created_rule(), definition=validate_rule(rule()), by="u") == []


def test_defaults_spelled_out_are_the_same_definition() -> None:
    state = created_rule(mode="active")
    spelled = rule(on_automation=False, approval=None, name="  Tag prod deploys ")
    assert decide_revise(state, definition=validate_rule(spelled), by="u") == []


def test_a_patch_of_enabled_alone_toggles_and_makes_no_version() -> None:
    [event] = decide_revise(created_rule(), definition=validate_rule(rule(enabled=False)), by="u")
    assert isinstance(event, RuleDisabled)


def test_enable_and_disable_are_idempotent() -> None:
    state = created_rule()
    assert decide_enable(state, enabled=True, by="u") == []
    [off] = decide_enable(state, enabled=False, by="u")
    assert isinstance(off, RuleDisabled)
    disabled = created_rule(enabled=False)
    assert isinstance(decide_enable(disabled, enabled=True, by="u")[0], RuleEnabled)


def test_archiving_disables_then_archives_once() -> None:
    state = created_rule()
    events = decide_archive(state, by="u")
    assert [type(e) for e in events] == [RuleDisabled, RuleArchived]
    archived = RuleState(state.rule_id, state.version, state.body, False, True)
    assert decide_archive(archived, by="u") == []
    with pytest.raises(Refusal) as caught:
        decide_revise(archived, definition=validate_rule(rule(name="x")), by="u")
    assert caught.value.code == "RULE_ARCHIVED"


def test_changing_a_rule_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(Refusal) as caught:
        decide_enable(None, enabled=True, by="u")
    assert caught.value.code == "NOT_FOUND"


# --- firing --------------------------------------------------------------------------------------


def test_a_rule_fires_when_trigger_and_conditions_hold() -> None:
    event = envelope("ticket.created", CREATED)
    assert fires(version(), event, TICKET)
    assert not fires(version(), event, {**TICKET, "fields": {"environment": "staging"}})
    assert not fires(version(), status_changed("open", "resolved"), TICKET)


def test_a_status_rule_fires_only_on_its_from_and_to() -> None:
    on_resolve = version(trigger={"event": "ticket.status_changed", "to": "resolved"})
    resolved = {**TICKET, "status": "resolved"}
    assert fires(on_resolve, status_changed("open", "resolved"), resolved)
    assert not fires(on_resolve, status_changed("resolved", "closed"), resolved)


def test_conditions_read_the_trigger_context() -> None:
    reopened = version(
        trigger={"event": "ticket.status_changed"},
        conditions={"field": "trigger.from", "op": "in", "value": ["resolved", "closed"]},
    )
    assert fires(reopened, status_changed("closed", "open"), TICKET)
    assert not fires(reopened, status_changed("in_progress", "open"), TICKET)


def test_a_shadow_rule_fires_and_its_job_is_skipped_at_once() -> None:
    shadow = version(mode="shadow")
    event = envelope("ticket.created", CREATED)
    assert fires(shadow, event, TICKET)
    queued, skipped = decide_firing(shadow, event, TICKET)
    assert isinstance(queued, JobQueued) and queued.mode == "shadow"
    assert isinstance(skipped, JobSkipped) and skipped.reason == "shadow"


def test_a_job_records_what_fired_and_what_it_saw() -> None:
    event = envelope("ticket.created", CREATED, stream="ticket-OPS-7")
    [queued] = decide_firing(version("r-9", 4), event, TICKET)
    assert isinstance(queued, JobQueued)
    assert (queued.rule_id, queued.rule_version, queued.trigger_event_id) == ("r-9", 4, event.id)
    assert queued.job_id == job_id("r-9", 4, event.id) and queued.ticket == "OPS-7"
    assert queued.actions == [{"type": "add_tag", "params": {"tag": "prod"}}]
    assert queued.context["ticket"]["key"] == "OPS-7"
    assert queued.context["rule"] == {"id": "r-9", "version": 4, "name": "Tag prod deploys"}
    assert queued.context["job"] == {"id": queued.job_id} and "trigger" in queued.context


# --- the loop guard ------------------------------------------------------------------------------


def test_an_event_caused_by_automation_fires_no_rule_that_did_not_opt_in() -> None:
    by_a_job = envelope("ticket.created", CREATED, actor=EXECUTOR, depth=1)
    assert not fires(version(), by_a_job, TICKET)
    assert fires(version(on_automation=True), by_a_job, TICKET)


def test_opted_in_rules_stop_beyond_the_causation_depth_limit() -> None:
    opted, limit = version(on_automation=True), DEFAULT_MAX_CAUSATION_DEPTH
    at_limit = envelope("ticket.created", CREATED, actor=EXECUTOR, depth=limit)
    beyond = envelope("ticket.created", CREATED, actor=EXECUTOR, depth=limit + 1)
    assert fires(opted, at_limit, TICKET)
    assert not fires(opted, beyond, TICKET)
    assert not fires(opted, at_limit, TICKET, max_depth=1)


def bounce(rule_id: str, when: str, then: str, *, opted: bool) -> RuleVersion:
    """A rule that, when a ticket's status becomes `when`, sets it to `then`."""
    return version(
        rule_id,
        trigger={"event": "ticket.status_changed", "to": when},
        conditions=None,
        on_automation=opted,
        actions=[{"type": "set_status", "params": {"status": then}}],
    )


def ping_pong(*, opted: bool) -> list[str]:
    """Which rules fire, in order, when each job's action changes the status back."""
    rules = [
        bounce("a", "in_progress", "open", opted=opted),
        bounce("b", "open", "in_progress", opted=opted),
    ]
    event, fired = status_changed("open", "in_progress"), []
    for _ in range(20):
        firing = [r for r in rules if fires(r, event, TICKET)]
        if not firing:
            break
        [rule] = firing
        fired.append(rule.rule_id)
        # the job (queued: depth + 1) runs its action: the ticket event is one deeper again
        frm, to = event.data["to_status"], rule.body.actions[0].params["status"]
        depth = event.metadata.causation_depth + 2
        event = status_changed(frm, to, actor=EXECUTOR, depth=depth)
    return fired


def test_ping_pong_between_two_opted_in_rules_stops_at_the_limit() -> None:
    assert ping_pong(opted=True) == ["a", "b"]  # depths 0 and 2; the next event is at 4 > 3


def test_without_opting_in_each_rule_of_a_ping_pong_fires_once_per_human_change() -> None:
    assert ping_pong(opted=False) == ["a"]


def test_facts_reported_by_other_services_fire_without_opting_in() -> None:
    data = {"kind": "resolution", "ticket": "OPS-7"}
    breach = envelope("sla.breached", data, stream="sla-1", actor=Actor.service("sla"), depth=7)
    assert fires(version(trigger={"event": "sla.breached"}, conditions=None), breach, TICKET)


# --- job ids -------------------------------------------------------------------------------------


def test_the_same_firing_has_one_job_id() -> None:
    event = uuid4()
    assert job_id("r-1", 1, event) == job_id("r-1", 1, event) == job_id("r-1", 1, str(event))
    assert job_id("r-1", 1, event) == job_id("r-1", 1, str(event).upper())


def test_the_job_id_is_sha256_over_length_prefixed_fields() -> None:
    import hashlib

    event = UUID("0190f5c4-0000-7000-8000-000000000001")
    fields = [b"opsledger.job.v1", b"r-1", b"2", str(event).encode()]
    expected = hashlib.sha256(b"".join(len(f).to_bytes(8, "big") + f for f in fields))
    assert job_id("r-1", 2, event) == expected.hexdigest()
    assert len(job_id("r-1", 2, event)) == 64


def test_different_firings_have_different_job_ids() -> None:
    first, second = uuid4(), uuid4()
    ids = {
        job_id("r-1", 1, first),
        job_id("r-1", 1, second),  # the same transition twice: two events, two jobs
        job_id("r-1", 2, first),
        job_id("r-2", 1, first),
        job_id("r-11", 1, first),
        job_id("r-1", 11, first),
    }
    assert len(ids) == 6


def test_a_job_id_needs_a_positive_version_and_a_uuid() -> None:
    with pytest.raises(ValueError):
        job_id("r", 0, uuid4())
    with pytest.raises(ValueError):
        job_id("r", 1, "not-a-uuid")


def test_deciding_a_firing_twice_makes_the_same_events() -> None:
    # two replicas racing append the same first event to the same stream; the store keeps one
    event = envelope("ticket.created", CREATED)
    assert decide_firing(version(), event, TICKET) == decide_firing(version(), event, TICKET)

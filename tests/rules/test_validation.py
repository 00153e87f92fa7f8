"""Rule validation: every error, each with its path, in one INVALID_RULE refusal."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from libs.contracts.rules import MAX_ACTIONS, MAX_NAME, RuleDefinition, TriggerName
from services.rules.refusals import InvalidRule, Refusal
from services.rules.validation import validate_rule
from tests.rules.support import rule


def errors_of(raw: object) -> dict[str, str]:
    with pytest.raises(InvalidRule) as caught:
        validate_rule(raw)
    return {e.path: e.message for e in caught.value.errors}


def leaf(field: str, op: str = "eq", value: Any = "x") -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def act(type_: str, **params: Any) -> dict[str, Any]:
    return {"type": type_, "params": params}


def test_a_valid_rule_comes_back_typed() -> None:
    definition = validate_rule(rule())
    assert isinstance(definition, RuleDefinition)
    assert definition.trigger.event == "ticket.created"


def test_the_refusal_is_invalid_rule_with_path_and_message_details() -> None:
    with pytest.raises(Refusal) as caught:
        validate_rule(rule(trigger={"event": "ticket.exploded"}))
    refusal = caught.value
    assert isinstance(refusal, InvalidRule) and refusal.code == "INVALID_RULE"
    body = refusal.body()
    assert body["error"]["code"] == "INVALID_RULE"
    assert body["error"]["message"] == "the rule is not valid (1 error)"
    [detail] = body["error"]["details"]
    assert set(detail) == {"path", "message"} and detail["path"] == "trigger.event"
    assert detail["message"].startswith("unknown trigger 'ticket.exploded'; one of: ticket.created")


def test_an_unknown_trigger_is_named_at_trigger_event() -> None:
    found = errors_of(rule(trigger={"event": "ticket.deleted"}))
    assert "unknown trigger" in found["trigger.event"]


def test_shape_bounds_are_refused_at_their_paths() -> None:
    many = [act("add_tag", tag="x")] * (MAX_ACTIONS + 1)
    found = errors_of(rule(name="n" * (MAX_NAME + 1), actions=many, mode="loud", colour="red"))
    assert set(found) == {"name", "actions", "mode", "colour"}
    assert found["colour"] == "is not a known key here"


def test_a_rule_that_is_not_an_object_is_refused_as_a_whole() -> None:
    assert set(errors_of(["not", "a", "rule"])) == {"rule"}


def test_an_option_the_trigger_does_not_take_is_refused() -> None:
    found = errors_of(rule(trigger={"event": "ticket.created", "from": "open", "kind": "response"}))
    assert set(found) == {"trigger.from", "trigger.kind"}
    assert "not an option of ticket.created" in found["trigger.from"]


def test_a_required_option_missing_is_refused() -> None:
    assert "needs 'after'" in errors_of(rule(trigger={"event": "ticket.stale"}))["trigger.after"]


def test_an_option_of_the_wrong_type_is_refused() -> None:
    bad = {"event": "ticket.status_changed", "from": "sleeping", "to": "resolved"}
    assert set(errors_of(rule(trigger=bad))) == {"trigger.from"}
    stale = {"event": "ticket.stale", "after": "soon"}
    assert "duration" in errors_of(rule(trigger=stale))["trigger.after"]


def test_status_change_options_that_are_real_statuses_are_accepted() -> None:
    trigger = {"event": "ticket.status_changed", "from": "open", "to": "resolved"}
    assert validate_rule(rule(trigger=trigger)).trigger.to == "resolved"


@pytest.mark.parametrize(
    ("trigger", "path"),
    [
        ("ticket.created", "trigger.from"),
        ("ticket.created", "description"),
        ("ticket.created", "alert.labels.severity"),
        ("ticket.created", "fields.service.name"),
        ("ticket.created", "title.length"),
        ("alert.received", "priority"),
        ("incident.analyzed", "alert.name"),
    ],
)
def test_a_condition_path_that_cannot_exist_for_the_trigger_is_refused(
    trigger: str, path: str
) -> None:
    fine = "fields.environment" if trigger == "ticket.created" else "incident.service"
    conditions = {"all": [leaf(fine), leaf(path)]}
    actions = [act("webhook", webhook_id="w1")]
    found = errors_of(rule(trigger={"event": trigger}, conditions=conditions, actions=actions))
    assert set(found) == {"conditions.all[1].field"}
    assert any(word in found["conditions.all[1].field"] for word in ("cannot exist", "has no"))


@pytest.mark.parametrize(
    ("trigger", "path"),
    [
        ({"event": "ticket.status_changed"}, "trigger.from"),
        ({"event": "ticket.status_changed"}, "trigger.to"),
        ({"event": "ticket.commented"}, "trigger.body"),
        ({"event": "sla.breached", "kind": "response"}, "trigger.kind"),
        ({"event": "alert.received"}, "alert.labels.severity"),
        ({"event": "incident.analyzed"}, "incident.analysis.risk"),
        ({"event": "job.dead_lettered"}, "trigger.last_error"),
        ({"event": "ticket.created"}, "fields.environment"),
        ({"event": "ticket.created"}, "tags"),
    ],
)
def test_paths_that_exist_for_the_trigger_are_accepted(trigger: dict[str, Any], path: str) -> None:
    actions = [act("webhook", webhook_id="w1")]
    opted = trigger["event"] == "job.dead_lettered"
    validate_rule(
        rule(trigger=trigger, conditions=leaf(path), actions=actions, on_automation=opted)
    )


def test_a_rule_on_dead_letters_must_opt_in_to_automation() -> None:
    dead = {"event": "job.dead_lettered"}
    found = errors_of(rule(trigger=dead, conditions=None, on_automation=False))
    assert set(found) == {"on_automation"}
    validate_rule(rule(trigger=dead, conditions=None, on_automation=True))


def test_paths_inside_not_and_any_are_named_in_full() -> None:
    conditions = {"not": {"any": [leaf("status"), leaf("nonsense")]}}
    assert set(errors_of(rule(conditions=conditions))) == {"conditions.not.any[1].field"}


def test_a_malformed_condition_is_named_where_it_is() -> None:
    conditions = {"all": [leaf("type"), {"field": "type", "op": "resembles", "value": 1}]}
    assert set(errors_of(rule(conditions=conditions))) == {"conditions.all[1].op"}


def test_a_matches_pattern_re2_refuses_is_named_at_its_value() -> None:
    conditions = {"all": [leaf("title", "matches", "(?=lookahead)")]}
    found = errors_of(rule(conditions=conditions))
    assert set(found) == {"conditions.all[0].value"}
    assert "not a valid regular expression" in found["conditions.all[0].value"]


def test_an_unknown_action_type_is_refused() -> None:
    found = errors_of(rule(actions=[act("add_tag", tag="a"), act("reboot_the_world")]))
    assert set(found) == {"actions[1].type"}
    assert "unknown action type 'reboot_the_world'" in found["actions[1].type"]


@pytest.mark.parametrize(
    ("action", "path"),
    [
        (act("add_tag"), "actions[0].params.tag"),
        (act("add_tag", tag=7), "actions[0].params.tag"),
        (act("add_tag", tag="x", colour="red"), "actions[0].params.colour"),
        (act("set_status", status="sleeping"), "actions[0].params.status"),
        (act("set_priority", priority="critical"), "actions[0].params.priority"),
        (act("assign"), "actions[0].params"),
        (act("assign", user_id="u1", on_call="s1"), "actions[0].params"),
        (act("assign", round_robin=[]), "actions[0].params.round_robin"),
        (act("notify", to="everyone", message="hi"), "actions[0].params.to"),
        (act("notify", to="requester"), "actions[0].params.message"),
        (act("email", to="a@example.com", subject="s"), "actions[0].params.body"),
        (act("slack", message="hi"), "actions[0].params.webhook_id"),
        (act("webhook", webhook_id="w", message="m", body={"a": 1}), "actions[0].params"),
        (act("escalate"), "actions[0].params.policy_id"),
        (act("run_runbook", params={}), "actions[0].params.runbook_id"),
    ],
)
def test_a_missing_or_wrong_action_param_is_named(action: dict[str, Any], path: str) -> None:
    assert path in errors_of(rule(actions=[action]))


@pytest.mark.parametrize(
    "action",
    [
        act("assign", user_id="u1"),
        act("assign", on_call="sched-1"),
        act("assign", round_robin=["u1", "u2"]),
        act("set_status", status="resolved"),
        act("set_priority", priority="urgent"),
        act("notify", to="role:admin", message="{{ ticket.key }} needs you"),
        act("email", to="ops@example.com", subject="{{ ticket.title }}", body="{{ ticket.key }}"),
        act("teams", webhook_id="w1", message="{{ ticket.key }}"),
        act("webhook", webhook_id="w1", body={"text": "{{ ticket.title }}", "n": 1}),
        act("escalate", policy_id="p1"),
        act("run_runbook", runbook_id="restart", params={"service": "{{ ticket.fields.service }}"}),
    ],
)
def test_every_action_type_with_good_params_is_accepted(action: dict[str, Any]) -> None:
    validate_rule(rule(actions=[action]))


def test_a_ticket_action_on_a_trigger_without_a_ticket_is_refused() -> None:
    alert = {"event": "alert.received"}
    found = errors_of(rule(trigger=alert, conditions=None, actions=[act("add_tag", tag="x")]))
    assert set(found) == {"actions[0].type"}


@pytest.mark.parametrize(
    ("action", "path"),
    [
        (act("notify", to="assignee", message="{{ ticket.key "), "actions[0].params.message"),
        (act("email", to="a@b.c", subject="{% if %}", body="b"), "actions[0].params.subject"),
        (act("webhook", webhook_id="w", body={"b": [{"t": "{{ x.y }"}]}), "params.body.b[0].t"),
        (act("run_runbook", runbook_id="r", params={"p": "{{ 1 +* 2 }}"}), "params.params.p"),
    ],
)
def test_a_template_that_does_not_parse_is_named(action: dict[str, Any], path: str) -> None:
    path = path if path.startswith("actions") else f"actions[0].{path}"
    found = errors_of(rule(actions=[action]))
    assert set(found) == {path}
    assert "does not parse" in found[path]


def test_a_template_reading_an_unknown_variable_is_refused() -> None:
    found = errors_of(rule(actions=[act("notify", to="requester", message="{{ tikcet.key }}")]))
    assert "unknown variable(s) tikcet" in found["actions[0].params.message"]


def test_alert_variables_are_known_only_for_alert_triggers() -> None:
    message = act("slack", webhook_id="w", message="{{ alert.name }}")
    assert "actions[0].params.message" in errors_of(rule(actions=[message]))
    validate_rule(rule(trigger={"event": "alert.received"}, conditions=None, actions=[message]))


def test_an_approval_that_cannot_be_met_is_refused() -> None:
    two_of_one = {"approvers": {"users": ["u1"], "roles": []}, "quorum": 2}
    assert "quorum" in errors_of(rule(approval=two_of_one))["approval"]
    never = {"approvers": {"roles": ["admin"]}, "expires_in": "1y"}
    assert set(errors_of(rule(approval=never))) == {"approval.expires_in"}
    nobody: dict[str, Any] = {"approvers": {"users": [], "roles": []}}
    assert set(errors_of(rule(approval=nobody))) == {"approval.approvers"}


def test_every_error_is_listed_at_once() -> None:
    found = errors_of(
        rule(
            name="",
            trigger={"event": "ticket.created", "to": "open"},
            conditions={"any": [leaf("trigger.to"), leaf("fields.environment")]},
            actions=[
                act("set_status", status="gone"),
                act("notify", to="requester", message="{{ }}"),
                act("fly"),
            ],
        )
    )
    assert set(found) == {
        "name",
        "trigger.to",
        "conditions.any[0].field",
        "actions[0].params.status",
        "actions[1].params.message",
        "actions[2].type",
    }


def test_an_error_echoes_at_most_a_little_of_the_input() -> None:
    found = errors_of(rule(trigger={"event": "x" * 100_000}))
    assert len(found["trigger.event"]) < 400


@pytest.mark.parametrize("name", get_args(TriggerName))
def test_a_rule_on_every_trigger_validates_even_before_its_events_exist(name: str) -> None:
    trigger: dict[str, Any] = {"event": name, **({"after": "3d"} if name == "ticket.stale" else {})}
    opted = name == "job.dead_lettered"
    actions = [act("webhook", webhook_id="w1", message="{{ rule.name }}: {{ trigger }}")]
    validate_rule(rule(trigger=trigger, conditions=None, actions=actions, on_automation=opted))

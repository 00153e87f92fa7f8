"""Ticket-type field schemas: how they are defined and how a ticket's values are checked."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from libs.contracts.tickets import MAX_FIELDS
from services.tickets.fields import (
    BUILTIN_TYPES,
    FieldSpec,
    FieldType,
    FieldValidationError,
    TicketTypeSchema,
    validate_values,
)

DEPLOYMENT = BUILTIN_TYPES["deployment"][1]
INCIDENT = BUILTIN_TYPES["incident"][1]


def schema(*fields: dict[str, Any]) -> TicketTypeSchema:
    return TicketTypeSchema.model_validate({"fields": list(fields)})


def spec(key: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "label": key.title(), "type": type_, **extra}


def one(field: dict[str, Any], value: Any) -> Any:
    return validate_values(schema(field), {field["key"]: value})[field["key"]]


def errors_for(type_schema: TicketTypeSchema, values: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FieldValidationError) as caught:
        validate_values(type_schema, values)
    return caught.value.details


def production_only(key: str) -> dict[str, Any]:
    return {"field": key, "op": "eq", "value": "production"}


ENVIRONMENT = spec("environment", "select", options=["production", "staging", "dev"])


# --- built-in types ------------------------------------------------------------------------


def test_the_four_builtin_types_are_defined() -> None:
    assert {key: name for key, (name, _) in BUILTIN_TYPES.items()} == {
        "access": "Access request",
        "deployment": "Deployment",
        "incident": "Incident",
        "infra": "Infrastructure change",
    }


def test_rollback_plan_is_required_for_production_deployments() -> None:
    values = {"service": "api", "environment": "production", "version": "1.4.2"}
    assert errors_for(DEPLOYMENT, values) == {"rollback_plan": "is required"}
    plan = {**values, "rollback_plan": "redeploy 1.4.1"}
    assert validate_values(DEPLOYMENT, plan) == plan


def test_rollback_plan_is_optional_outside_production() -> None:
    values = {"service": "api", "environment": "staging", "version": "1.4.2"}
    assert validate_values(DEPLOYMENT, values) == values


def test_incident_severity_defaults_to_sev3() -> None:
    assert validate_values(INCIDENT, {"service": "db"}) == {"service": "db", "severity": "sev3"}
    assert validate_values(INCIDENT, {"service": "db", "severity": "sev1"})["severity"] == "sev1"


def test_access_requests_need_system_level_and_justification() -> None:
    assert errors_for(BUILTIN_TYPES["access"][1], {}) == {
        "system": "is required",
        "access_level": "is required",
        "justification": "is required",
    }


# --- reporting -----------------------------------------------------------------------------


def test_every_bad_field_is_reported_at_once() -> None:
    details = errors_for(
        DEPLOYMENT,
        {"environment": "prod", "version": 12, "change_window": "tomorrow", "title_extra": "x"},
    )
    assert details == {
        "service": "is required",
        "environment": "must be one of production, staging, dev",
        "version": "must be text",
        "change_window": "must be an ISO-8601 date and time, e.g. 2025-01-31T09:00:00Z",
        "title_extra": "unknown field",
    }


def test_field_validation_error_is_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match="service: is required"):
        validate_values(INCIDENT, {})


def test_values_that_are_not_an_object_are_refused() -> None:
    assert errors_for(INCIDENT, ["service"]) == {"fields": "must be an object"}  # type: ignore[arg-type]


def test_blank_values_count_as_not_given() -> None:
    assert errors_for(INCIDENT, {"service": "  ", "impact": ""}) == {"service": "is required"}


# --- conditional fields --------------------------------------------------------------------


SHOWN_IN_PRODUCTION = schema(
    ENVIRONMENT,
    spec("approver", "user", required=True, shown_when=production_only("fields.environment")),
    spec("ticket", "text", default="n/a", shown_when=production_only("fields.environment")),
)


def test_a_hidden_field_is_not_required_and_gets_no_default() -> None:
    assert validate_values(SHOWN_IN_PRODUCTION, {"environment": "dev"}) == {"environment": "dev"}


def test_a_value_for_a_hidden_field_is_not_applicable() -> None:
    details = errors_for(SHOWN_IN_PRODUCTION, {"environment": "dev", "approver": "u1"})
    assert details == {"approver": "not applicable"}


def test_a_shown_field_is_required_and_defaulted() -> None:
    assert errors_for(SHOWN_IN_PRODUCTION, {"environment": "production"}) == {
        "approver": "is required"
    }
    values = {"environment": "production", "approver": "u1"}
    assert validate_values(SHOWN_IN_PRODUCTION, values) == {**values, "ticket": "n/a"}


def test_conditions_see_defaults_of_fields_left_empty() -> None:
    postmortem = spec(
        "postmortem",
        "url",
        shown_when={"field": "fields.severity", "op": "in", "value": ["sev1", "sev2"]},
    )
    severities = spec("severity", "select", options=["sev1", "sev2", "sev3"], default="sev1")
    type_schema = schema(severities, postmortem)
    link = "https://wiki.example.com/pm/1"
    assert validate_values(type_schema, {"postmortem": link})["postmortem"] == link
    details = errors_for(type_schema, {"severity": "sev3", "postmortem": link})
    assert details == {"postmortem": "not applicable"}


# --- value types ---------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "kept"), [(3, 3), (2.5, 2.5), ("42", 42), ("-1.5e2", -150.0)])
def test_numbers_are_normalised_to_int_or_float(given: Any, kept: float) -> None:
    value = one(spec("n", "number"), given)
    assert value == kept and type(value) is type(kept)


@pytest.mark.parametrize("given", [True, "many", float("nan"), float("inf"), [1], "١٢"])
def test_non_numbers_are_refused(given: Any) -> None:
    assert errors_for(schema(spec("n", "number")), {"n": given})["n"].startswith("must be a")


def test_booleans_must_be_real_booleans() -> None:
    assert one(spec("b", "boolean"), False) is False
    for given in ("true", 1, "yes"):
        assert errors_for(schema(spec("b", "boolean")), {"b": given}) == {
            "b": "must be true or false"
        }


def test_datetimes_are_normalised_to_utc() -> None:
    assert one(spec("at", "datetime"), "2025-03-01T10:30:00+02:00") == "2025-03-01T08:30:00Z"
    assert one(spec("at", "datetime"), "2025-03-01T10:30:00.5Z") == "2025-03-01T10:30:00.500000Z"


@pytest.mark.parametrize("given", ["2025-03-01T10:30:00", "2025-03-01"])
def test_datetimes_without_a_timezone_are_refused(given: str) -> None:
    assert errors_for(schema(spec("at", "datetime")), {"at": given})["at"].startswith(
        "must include a timezone"
    )


def test_urls_are_http_or_https_with_a_host() -> None:
    assert one(spec("u", "url"), " https://grafana.example.com/d/1 ") == (
        "https://grafana.example.com/d/1"
    )
    for given in ("ftp://example.com", "javascript:alert(1)", "http://", "example.com", 5,
                  "http://exa mple.com", "http://[::1"):  # fmt: skip
        assert errors_for(schema(spec("u", "url")), {"u": given}) == {
            "u": "must be an http or https URL with a host"
        }


def test_users_are_non_empty_id_strings() -> None:
    assert one(spec("who", "user"), " u-17 ") == "u-17"
    assert errors_for(schema(spec("who", "user")), {"who": 17}) == {"who": "must be a user id"}


def test_multiselect_takes_a_list_of_unique_options() -> None:
    regions = spec("regions", "multiselect", options=["eu", "us", "ap"])
    assert one(regions, ["us", "eu"]) == ["us", "eu"]
    assert errors_for(schema(regions), {"regions": ["eu", "eu"]}) == {
        "regions": "lists 'eu' more than once"
    }
    assert errors_for(schema(regions), {"regions": ["mars"]}) == {
        "regions": "'mars' is not one of eu, us, ap"
    }
    assert errors_for(schema(regions), {"regions": "eu"}) == {
        "regions": "must be a list of options from: eu, us, ap"
    }


def test_text_length_is_bounded_by_type_or_max_length() -> None:
    assert errors_for(schema(spec("t", "text")), {"t": "x" * 501}) == {
        "t": "must be at most 500 characters"
    }
    assert len(one(spec("t", "textarea"), "x" * 10_000)) == 10_000
    assert errors_for(schema(spec("t", "text", max_length=3)), {"t": "abcd"}) == {
        "t": "must be at most 3 characters"
    }


# --- defining schemas ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        (spec("Bad-Key", "text"), "should match pattern"),
        (spec("k", "colour"), "Input should be 'text'"),
        (spec("k", "select"), "needs at least one option"),
        (spec("k", "select", options=[]), "needs at least one option"),
        (spec("k", "multiselect", options=["a", "a"]), "options must be unique"),
        (spec("k", "select", options=["a", " "]), "options must not be blank"),
        (spec("k", "text", options=["a"]), "options are only for select"),
        (spec("k", "number", max_length=5), "max_length is only for text"),
        (spec("k", "select", options=["a"], default="b"), "default must be one of a"),
        (spec("k", "datetime", default="2025-01-01"), "default must include a timezone"),
        (spec("k", "text", required=True, required_when=production_only("fields.x")), "either"),
        (spec("k", "text", shown_when=production_only("fields.k")), "must not depend on the"),
        (spec("k", "text", shown_when=production_only("priority")), "may only read other fields"),
        (spec("k", "text", shown_when={"field": "fields.x", "op": "zz"}), "Input should be 'eq'"),
    ],
)
def test_malformed_field_specs_are_rejected_with_the_reason(
    field: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        FieldSpec.model_validate(field)


def test_a_default_is_stored_normalised() -> None:
    field = FieldSpec.model_validate(spec("at", "datetime", default="2025-01-01T01:00:00+01:00"))
    assert field.default == "2025-01-01T00:00:00Z"
    assert field.type is FieldType.DATETIME


def test_field_keys_are_unique_within_a_type() -> None:
    with pytest.raises(ValidationError, match="'dup' is used twice"):
        schema(spec("dup", "text"), spec("dup", "number"))


def test_a_type_has_at_most_the_field_limit() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_FIELDS} items"):
        schema(*(spec(f"f{i}", "text") for i in range(MAX_FIELDS + 1)))


def test_a_condition_may_only_read_fields_of_the_same_type() -> None:
    with pytest.raises(ValidationError, match=r"reads an unknown field: fields\.environment"):
        schema(spec("plan", "textarea", required_when=production_only("fields.environment")))


def test_a_condition_comparing_a_select_with_a_non_option_is_rejected() -> None:
    typo = {"field": "fields.environment", "op": "eq", "value": "prod"}
    with pytest.raises(ValidationError, match="compares environment with 'prod'"):
        schema(ENVIRONMENT, spec("plan", "textarea", required_when=typo))


def test_schemas_are_immutable() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        DEPLOYMENT.fields = []  # type: ignore[misc]


def test_a_schema_survives_a_json_round_trip() -> None:
    stored = DEPLOYMENT.model_dump_json()
    assert TicketTypeSchema.model_validate_json(stored) == DEPLOYMENT

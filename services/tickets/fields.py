"""Ticket-type field schemas, the built-in types, and validation of a ticket's field values."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from libs.contracts.tickets import MAX_FIELDS
from libs.events.conditions import Condition, Op, evaluate, leaves, referenced_fields

DEFAULT_MAX_LENGTH: Final = {"text": 500, "textarea": 10_000}
MAX_USER_ID_LENGTH: Final = 200
MAX_URL_LENGTH: Final = 2_048

_KEY = r"^[a-z][a-z0-9_]{0,62}$"
_FIELD_PATH = re.compile(r"fields\.([a-z][a-z0-9_]{0,62})")
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_OPTION_OPS: Final = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.CONTAINS})


class FieldType(StrEnum):
    """The kinds of value a ticket field holds."""

    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    BOOLEAN = "boolean"
    SELECT = "select"
    MULTISELECT = "multiselect"
    USER = "user"
    DATETIME = "datetime"
    URL = "url"


_WITH_OPTIONS: Final = frozenset({FieldType.SELECT, FieldType.MULTISELECT})
_WITH_LENGTH: Final = frozenset({FieldType.TEXT, FieldType.TEXTAREA})


class FieldValidationError(ValueError):
    """A ticket's field values broke its type's schema; details maps each bad key to why."""

    def __init__(self, details: Mapping[str, str]) -> None:
        self.details: dict[str, str] = dict(details)
        super().__init__("; ".join(f"{key}: {why}" for key, why in self.details.items()))


def _blank(value: object) -> bool:
    """Nothing entered: the UI sends "" or [] for untouched inputs."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | tuple) and not value)


def _text(value: object, limit: int, *, strip: bool) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = value.strip() if strip else value
    if len(text) > limit:
        raise ValueError(f"must be at most {limit} characters")
    return text


def _number(value: object) -> int | float:
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        value = int(text) if text.lstrip("-").isdigit() else float(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _datetime(value: object) -> str:
    if isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        raise ValueError("must be an ISO-8601 date and time, e.g. 2025-01-31T09:00:00Z")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a timezone, e.g. 2025-01-31T09:00:00Z")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _url(value: object) -> str:
    problem = "must be an http or https URL with a host"
    if not isinstance(value, str) or len(value.strip()) > MAX_URL_LENGTH:
        raise ValueError(problem)
    url = value.strip()
    try:
        parts = urlsplit(url)
        printable = url.isprintable() and " " not in url  # isprintable() lets a space through
        if parts.scheme.lower() in ("http", "https") and parts.hostname and printable:
            return url
    except ValueError:  # e.g. an unclosed IPv6 bracket
        pass
    raise ValueError(problem)


def _user(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a user id")
    if len(value.strip()) > MAX_USER_ID_LENGTH:
        raise ValueError(f"must be a user id of at most {MAX_USER_ID_LENGTH} characters")
    return value.strip()


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _choice(field_type: FieldType, value: object, options: list[str]) -> str | list[str]:
    listed = ", ".join(options)
    if field_type is FieldType.SELECT:
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"must be one of {listed}")
        return value
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of options from: {listed}")
    chosen: list[str] = []
    for item in value:
        if item not in options:
            raise ValueError(f"'{item}' is not one of {listed}")
        if item in chosen:
            raise ValueError(f"lists '{item}' more than once")
        chosen.append(item)
    return chosen


_SCALARS: Final[dict[FieldType, Callable[[object], Any]]] = {
    FieldType.NUMBER: _number,
    FieldType.BOOLEAN: _boolean,
    FieldType.USER: _user,
    FieldType.DATETIME: _datetime,
    FieldType.URL: _url,
}


def normalise_value(
    field_type: FieldType, value: object, *, options: list[str] | None, max_length: int | None
) -> Any:
    """The canonical form of a non-blank value for a field; ValueError says what is wrong."""
    if field_type in _WITH_LENGTH:
        limit = max_length or DEFAULT_MAX_LENGTH[field_type]
        return _text(value, limit, strip=field_type is FieldType.TEXT)
    if field_type in _WITH_OPTIONS:
        return _choice(field_type, value, options or [])
    return _SCALARS[field_type](value)


class FieldSpec(BaseModel):
    """One field of a ticket type: what it holds, whether it is required, when it applies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=_KEY)
    label: str = Field(min_length=1, max_length=200)
    type: FieldType
    required: bool = False
    options: list[str] | None = Field(default=None, validate_default=True)
    max_length: int | None = Field(default=None, ge=1, le=100_000)
    default: Any = None
    help: str | None = Field(default=None, max_length=1_000)
    shown_when: Condition | None = None
    required_when: Condition | None = None

    @field_validator("options")
    @classmethod
    def _options_fit_type(cls, options: list[str] | None, info: ValidationInfo) -> list[str] | None:
        kind = info.data.get("type")
        if kind not in _WITH_OPTIONS:
            if options is not None:
                raise ValueError("options are only for select and multiselect fields")
            return None
        if not options:
            raise ValueError(f"a {kind} field needs at least one option")
        if any(not option.strip() for option in options):
            raise ValueError("options must not be blank")
        if len(set(options)) != len(options):
            raise ValueError("options must be unique")
        return options

    @field_validator("max_length")
    @classmethod
    def _length_fits_type(cls, max_length: int | None, info: ValidationInfo) -> int | None:
        if max_length is not None and info.data.get("type") not in _WITH_LENGTH:
            raise ValueError("max_length is only for text and textarea fields")
        return max_length

    @field_validator("default")
    @classmethod
    def _default_is_valid(cls, default: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        needs_options = kind in _WITH_OPTIONS
        if _blank(default) or kind is None or (needs_options and "options" not in info.data):
            return None if _blank(default) else default  # the earlier error is the one to show
        try:
            return normalise_value(
                kind,
                default,
                options=info.data.get("options"),
                max_length=info.data.get("max_length"),
            )
        except ValueError as exc:
            raise ValueError(f"default {exc}") from None

    @model_validator(mode="after")
    def _conditions_read_other_fields(self) -> FieldSpec:
        if self.required and self.required_when is not None:
            raise ValueError("a field is either always required or required_when, not both")
        for name, condition in self.conditions().items():
            for path in sorted(referenced_fields(condition)):
                found = _FIELD_PATH.fullmatch(path)
                if found is None:
                    raise ValueError(f"{name} may only read other fields ('fields.<key>'): {path}")
                if found[1] == self.key:
                    raise ValueError(f"{name} must not depend on the field itself")
        return self

    def conditions(self) -> dict[str, Condition]:
        """The field's conditions by attribute name (shown_when, required_when), if set."""
        both = {"shown_when": self.shown_when, "required_when": self.required_when}
        return {name: condition for name, condition in both.items() if condition is not None}


class TicketTypeSchema(BaseModel):
    """The ordered field schema of one ticket type (one version of it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: list[FieldSpec] = Field(default_factory=list, max_length=MAX_FIELDS)

    @model_validator(mode="after")
    def _keys_unique_and_conditions_resolve(self) -> TicketTypeSchema:
        specs: dict[str, FieldSpec] = {}
        for spec in self.fields:
            if spec.key in specs:
                raise ValueError(f"field key '{spec.key}' is used twice")
            specs[spec.key] = spec
        for spec in self.fields:
            for name, condition in spec.conditions().items():
                for leaf in leaves(condition):
                    target = specs.get(leaf.field.removeprefix("fields."))
                    if target is None:
                        raise ValueError(f"{spec.key}.{name} reads an unknown field: {leaf.field}")
                    _check_options(spec.key, name, leaf.op, leaf.value, target)
        return self

    def validate_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """See validate_values()."""
        return validate_values(self, values)


def _check_options(key: str, name: str, op: Op, value: Any, target: FieldSpec) -> None:
    # A typo such as "prod" for "production" would make the condition silently never hold.
    if target.options is None or op not in _OPTION_OPS:
        return
    compared = value if isinstance(value, list) else [value]
    for item in compared:
        if item not in target.options:
            raise ValueError(
                f"{key}.{name} compares {target.key} with {item!r}, "
                f"not one of {', '.join(target.options)}"
            )


def validate_values(schema: TicketTypeSchema, values: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised values with defaults applied, or FieldValidationError naming every bad field.

    Conditions see {"fields": <valid values, defaults applied>}. A field hidden by shown_when
    is never required, takes no value ("not applicable") and gets no default in the result.
    """
    if not isinstance(values, Mapping):
        raise FieldValidationError({"fields": "must be an object"})
    errors: dict[str, str] = {}
    given: dict[str, Any] = {}
    for spec in schema.fields:
        if _blank(raw := values.get(spec.key)):
            continue
        try:
            given[spec.key] = normalise_value(
                spec.type, raw, options=spec.options, max_length=spec.max_length
            )
        except ValueError as exc:
            errors[spec.key] = str(exc)
    defaults = {s.key: s.default for s in schema.fields if s.default is not None}
    context = {"fields": {k: v for k, v in defaults.items() if k not in errors} | given}
    result: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.shown_when is not None and not evaluate(spec.shown_when, context):
            if not _blank(values.get(spec.key)):
                errors[spec.key] = "not applicable"
        elif spec.key in given or spec.key in defaults:
            result[spec.key] = given.get(spec.key, spec.default)
        elif spec.key not in errors and _required(spec, context):
            errors[spec.key] = "is required"
    order = {spec.key: position for position, spec in enumerate(schema.fields)}
    errors |= {str(key): "unknown field" for key in values if key not in order}
    if errors:
        by_position = sorted(errors.items(), key=lambda error: order.get(error[0], len(order)))
        raise FieldValidationError(dict(by_position))
    return result


def _required(spec: FieldSpec, context: Mapping[str, Any]) -> bool:
    return spec.required or (
        spec.required_when is not None and evaluate(spec.required_when, context)
    )


_ENVIRONMENTS: Final = ["production", "staging", "dev"]
_BUILTIN_DATA: Final[dict[str, tuple[str, list[dict[str, Any]]]]] = {
    "access": ("Access request", [
        {"key": "system", "label": "System", "type": "text", "required": True,
         "help": "The system, database or account you need access to."},
        {"key": "access_level", "label": "Access level", "type": "select", "required": True,
         "options": ["read", "write", "admin"]},
        {"key": "justification", "label": "Justification", "type": "textarea", "required": True},
        {"key": "expires_at", "label": "Expires at", "type": "datetime",
         "help": "When the access should be revoked."},
    ]),
    "deployment": ("Deployment", [
        {"key": "service", "label": "Service", "type": "text", "required": True},
        {"key": "environment", "label": "Environment", "type": "select", "required": True,
         "options": _ENVIRONMENTS},
        {"key": "version", "label": "Version", "type": "text", "required": True},
        {"key": "rollback_plan", "label": "Rollback plan", "type": "textarea",
         "required_when": {"field": "fields.environment", "op": "eq", "value": "production"},
         "help": "Required for production deployments."},
        {"key": "change_window", "label": "Change window", "type": "datetime"},
    ]),
    "incident": ("Incident", [
        {"key": "service", "label": "Service", "type": "text", "required": True},
        {"key": "severity", "label": "Severity", "type": "select",
         "options": ["sev1", "sev2", "sev3", "sev4"], "default": "sev3"},
        {"key": "impact", "label": "Impact", "type": "textarea",
         "help": "Who or what is affected, and how badly."},
    ]),
    "infra": ("Infrastructure change", [
        {"key": "resource", "label": "Resource", "type": "text", "required": True},
        {"key": "change", "label": "Change", "type": "textarea", "required": True},
        {"key": "environment", "label": "Environment", "type": "select",
         "options": _ENVIRONMENTS},
    ]),
}  # fmt: skip

BUILTIN_TYPES: Final[dict[str, tuple[str, TicketTypeSchema]]] = {
    key: (name, TicketTypeSchema.model_validate({"fields": fields}))
    for key, (name, fields) in _BUILTIN_DATA.items()
}

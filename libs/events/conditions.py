"""The condition language shared by field schemas and automation rules: parse, evaluate, inspect.

`matches` runs on RE2 (google-re2), which matches in time linear in the input for every pattern
it accepts: Python's backtracking `re` takes exponential time on patterns such as `(a+)+$`
(30 characters of input were enough to hang it), and no static check of a pattern catches every
such case, nor does a timeout give the same answer on replay. RE2 refuses backreferences and
lookaround; those patterns are refused when the condition is parsed.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Protocol, Self, TypeAlias

import re2
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

MAX_DEPTH: Final = 10
MAX_PATTERN_LENGTH: Final = 200
MAX_MATCH_INPUT: Final = 10_000
MAX_BRANCHES: Final = 100
MAX_LIST_VALUES: Final = 1_000

_PATH = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_DURATION = re.compile("".join(f"(?:([0-9]{{1,9}}){unit})?" for unit in "wdhms"))
_DURATION_UNITS: Final = (7 * 86_400, 86_400, 3_600, 60, 1)
_MISSING: Final = object()


class Pattern(Protocol):
    """A compiled `matches` pattern (an RE2 one)."""

    def search(self, text: str) -> object | None: ...


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the author's error, not a log line
    return options


_RE2_OPTIONS: Final = _re2_options()


class Op(StrEnum):
    """Comparison operators of a leaf condition."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    MATCHES = "matches"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EXISTS = "exists"


_ORDERING: Final[dict[Op, Callable[[Any, Any], Any]]] = {
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
}


def parse_duration(text: str) -> int | None:
    """Seconds in a duration such as "30s", "15m", "2h", "1d", "1w" or "1h30m"; None if not one."""
    found = _DURATION.fullmatch(text.strip())
    if found is None or not any(found.groups()):
        return None
    return sum(int(n) * unit for n, unit in zip(found.groups(), _DURATION_UNITS, strict=True) if n)


def _as_number(value: object) -> int | float | None:
    """A number or duration (as seconds) to compare with gt/gte/lt/lte; None if neither."""
    # ints stay ints: Python compares int with float exactly, and a huge int has no float.
    if isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float):
        return value
    return parse_duration(value) if isinstance(value, str) else None


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


class Leaf(BaseModel):
    """Compare the value at a dotted path of the context: {"field", "op", "value"}."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1, max_length=200)
    op: Op
    value: Any
    _pattern: Pattern | None = PrivateAttr(default=None)
    _threshold: int | float = PrivateAttr(default=0)

    @field_validator("field")
    @classmethod
    def _dotted_path(cls, path: str) -> str:
        if _PATH.fullmatch(path) is None:
            raise ValueError("field must be a dotted path such as 'fields.environment'")
        return path

    @model_validator(mode="after")
    def _value_fits_op(self) -> Leaf:
        op, value = self.op, self.value
        if value is None:
            raise ValueError(f"'{op}' needs a value; use op 'exists' to test for absence")
        if op is Op.EXISTS:
            if not isinstance(value, bool):
                raise ValueError("'exists' takes value true or false")
        elif op in (Op.IN, Op.NOT_IN):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST_VALUES:
                raise ValueError(f"'{op}' takes a list of 1 to {MAX_LIST_VALUES} values")
            if not all(_is_scalar(item) for item in value):
                raise ValueError(f"'{op}' values must be strings, numbers or booleans")
        elif op is Op.CONTAINS:
            if not _is_scalar(value):
                raise ValueError("'contains' takes a string, number or boolean")
        elif op is Op.MATCHES:
            self._pattern = _compile(value)
        elif op in _ORDERING:
            threshold = _as_number(value)
            if threshold is None:
                raise ValueError(f"'{op}' takes a number or a duration such as '15m', '2h', '1d'")
            self._threshold = threshold
        return self


def _compile(pattern: object) -> Pattern:
    if not isinstance(pattern, str):
        raise ValueError("'matches' takes a regular expression string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"'matches' pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        compiled: Pattern = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"'matches' pattern is not a valid regular expression: {reason} "
            "(RE2 syntax: no backreferences or lookaround)"
        ) from None
    return compiled


class _Branch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _depth_limit(self) -> Self:
        # Covers nodes built in code; raw input is checked before parsing (see Condition).
        _within_depth(self)
        return self


class AllOf(_Branch):
    """True when every nested condition holds: {"all": [...]}."""

    all: list[Condition] = Field(min_length=1, max_length=MAX_BRANCHES)


class AnyOf(_Branch):
    """True when at least one nested condition holds: {"any": [...]}."""

    any: list[Condition] = Field(min_length=1, max_length=MAX_BRANCHES)


class NotOf(_Branch):
    """True when the nested condition does not hold: {"not": {...}}."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    not_: Condition = Field(alias="not")


def _children(node: object) -> list[object]:
    """Nested conditions of a raw (dict) or parsed node, for the depth check."""
    if isinstance(node, AllOf):
        return list(node.all)
    if isinstance(node, AnyOf):
        return list(node.any)
    if isinstance(node, NotOf):
        return [node.not_]
    if not isinstance(node, Mapping):
        return []
    found: list[object] = []
    for key in ("all", "any"):
        if isinstance(branches := node.get(key), list | tuple):
            found.extend(branches)
    if "not" in node:
        found.append(node["not"])
    return found


def _within_depth(raw: object) -> object:
    # Checked on the raw input, iteratively, so a hostile 10,000-deep document is refused
    # before pydantic recurses into it.
    stack: list[tuple[object, int]] = [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"conditions may nest at most {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in _children(node))
    return raw


def _kind(raw: object) -> str | None:
    tags = ((Leaf, "leaf"), (AllOf, "all"), (AnyOf, "any"), (NotOf, "not"))
    if isinstance(raw, BaseModel):
        return next((tag for model, tag in tags if isinstance(raw, model)), None)
    if isinstance(raw, Mapping):
        return next((key for key in ("all", "any", "not") if key in raw), "leaf")
    return None


Condition: TypeAlias = Annotated[
    Annotated[Leaf, Tag("leaf")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")],
    Discriminator(
        _kind,
        custom_error_type="invalid_condition",
        custom_error_message=(
            "a condition must be an object: {field, op, value}, {all: [...]}, "
            "{any: [...]} or {not: {...}}"
        ),
    ),
    BeforeValidator(_within_depth),
]

for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()

_ADAPTER: Final[TypeAdapter[Condition]] = TypeAdapter(
    Condition, config=ConfigDict(title="Condition")
)


def parse_condition(obj: object) -> Condition:
    """Validate a JSON-shaped condition; raises pydantic.ValidationError (a ValueError)."""
    return _ADAPTER.validate_python(obj)


def dump_condition(condition: Condition) -> dict[str, Any]:
    """The JSON shape of a condition, as parse_condition accepts it."""
    dumped: dict[str, Any] = _ADAPTER.dump_python(condition, mode="json", by_alias=True)
    return dumped


def _lookup(context: Mapping[str, Any], path: str) -> object:
    node: object = context
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return _MISSING if node is None else node


def _equal(left: object, right: object) -> bool:
    # True == 1 in Python; a condition author comparing to 1 does not mean true.
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_equal, left, right))
    return left == right


def _one_of(actual: object, options: list[Any]) -> bool:
    # A list-valued field (tags, multiselect) is "in" the options when any element is.
    items = actual if isinstance(actual, list | tuple) else [actual]
    return any(_equal(item, option) for item in items for option in options)


def _contains(actual: object, value: object) -> bool:
    if isinstance(actual, str):
        return isinstance(value, str) and value in actual
    return isinstance(actual, list | tuple) and any(_equal(item, value) for item in actual)


_TESTS: Final[dict[Op, Callable[[object, Any], bool]]] = {
    Op.EQ: _equal,
    Op.NE: lambda actual, value: not _equal(actual, value),
    Op.IN: _one_of,
    Op.NOT_IN: lambda actual, value: not _one_of(actual, value),
    Op.CONTAINS: _contains,
}


def _evaluate_leaf(leaf: Leaf, context: Mapping[str, Any]) -> bool:
    op, value = leaf.op, leaf.value
    actual = _lookup(context, leaf.field)
    if actual is _MISSING:
        # Only these hold for "nothing there"; every other op is false on a missing path.
        return op in (Op.NE, Op.NOT_IN) or (op is Op.EXISTS and value is False)
    if op is Op.EXISTS:
        return value is True
    if op in _TESTS:
        return _TESTS[op](actual, value)
    if op is Op.MATCHES:
        pattern = leaf._pattern
        text = actual[:MAX_MATCH_INPUT] if isinstance(actual, str) else None
        return text is not None and pattern is not None and pattern.search(text) is not None
    number = _as_number(actual)
    return number is not None and bool(_ORDERING[op](number, leaf._threshold))


def evaluate(condition: Condition, context: Mapping[str, Any]) -> bool:
    """Whether the condition holds for the context (a plain dict of dicts)."""
    if isinstance(condition, AllOf):
        return all(evaluate(branch, context) for branch in condition.all)
    if isinstance(condition, AnyOf):
        return any(evaluate(branch, context) for branch in condition.any)
    if isinstance(condition, NotOf):
        return not evaluate(condition.not_, context)
    return _evaluate_leaf(condition, context)


def leaves(condition: Condition) -> list[Leaf]:
    """Every leaf of the condition, in document order."""
    if isinstance(condition, AllOf | AnyOf):
        branches = condition.all if isinstance(condition, AllOf) else condition.any
        return [leaf for branch in branches for leaf in leaves(branch)]
    if isinstance(condition, NotOf):
        return leaves(condition.not_)
    return [condition]


def referenced_fields(condition: Condition) -> set[str]:
    """The dotted paths the condition reads."""
    return {leaf.field for leaf in leaves(condition)}

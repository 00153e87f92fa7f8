"""Checks every way into the system shares, in one walk over the parsed input: no NUL character
(Postgres can store none in text or jsonb), no lone surrogate (Python's json decodes "\\ud800"
into a str that cannot be encoded to UTF-8, so nothing could store or send it), and no nesting
deeper than `MAX_DEPTH` (pydantic refuses to serialise beyond a few hundred levels and the json
module beyond the recursion limit: refused here, it never reaches either)."""

from __future__ import annotations

from typing import Any, Final

MAX_DEPTH: Final = 32
"""Levels of objects and arrays one input may nest: a ticket type's conditions (10 levels of
all/any/not, two JSON levels each, inside fields) need about 25."""

NUL: Final = "contains a NUL character"
LONE_SURROGATE: Final = "contains a lone surrogate (not a Unicode character)"
TOO_DEEP: Final = f"nests deeper than {MAX_DEPTH} levels"


def _unencodable(text: str) -> bool:
    if text.isascii():  # the common case, without making a copy
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # only a surrogate code point fails to encode
        return True
    return False


def input_problem(value: Any, *, max_depth: int = MAX_DEPTH) -> str | None:
    """What makes `value` unfit to enter the system (one of NUL, LONE_SURROGATE, TOO_DEEP), or
    None. Strings in nested dicts and lists count too, keys included; a scalar is at depth 0."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return NUL
            if _unencodable(item):
                return LONE_SURROGATE
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return TOO_DEEP
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def contains_nul(value: Any) -> bool:
    """Whether `value` holds anything `input_problem` refuses: a NUL character (the name it has
    always had), a lone surrogate, or nesting too deep. None of them can be stored."""
    return input_problem(value) is not None

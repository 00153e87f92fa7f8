"""Opaque cursors of the tickets service's lists: base64 of `{"<name>": <position>}`, where the
name says which list gave it out (`before` a ticket number, `after` a comment position, an
event version or a type key). A cursor that is not one the list gave out is INVALID_CURSOR."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from libs.events.inputs import input_problem
from services.tickets.refusals import Refusal

INT_MAX: Final = 2**63 - 1
"""Positions and numbers are Postgres bigints at most."""


def encode_cursor(name: str, value: int | str) -> str:
    return base64.urlsafe_b64encode(json.dumps({name: value}).encode()).decode()


def _decoded(cursor: str, name: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))[name]
    except (ValueError, TypeError, KeyError, binascii.Error):
        return None


def _invalid() -> Refusal:
    return Refusal("INVALID_CURSOR", "the cursor is not one this list gave out")


def decode_number(cursor: str, name: str, *, maximum: int = INT_MAX) -> int:
    """The whole number in a cursor of this list (1..maximum)."""
    value = _decoded(cursor, name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise _invalid()
    return value


def decode_text(cursor: str, name: str, *, max_length: int = 200) -> str:
    """The text in a cursor of this list (a key)."""
    value = _decoded(cursor, name)
    if not isinstance(value, str) or not 0 < len(value) <= max_length or input_problem(value):
        raise _invalid()
    return value

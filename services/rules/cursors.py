"""Opaque cursors of the rules service's lists: base64 of `{"<name>": <value>}` (`after` a rule
id, or a version). A cursor that is not one the list gave out is INVALID_CURSOR."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from services.rules.refusals import Refusal

T = TypeVar("T", int, str)


def encode(name: str, value: int | str) -> str:
    return base64.urlsafe_b64encode(json.dumps({name: value}).encode()).decode()


def decode(cursor: str, name: str, kind: type[T]) -> T:
    try:
        value: Any = json.loads(base64.urlsafe_b64decode(cursor.encode()))[name]
    except (ValueError, TypeError, KeyError, binascii.Error):
        value = None
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok or (isinstance(value, int) and not 0 <= value < 2**31):
        raise Refusal("INVALID_CURSOR", "the cursor is not one this list gave out")
    if isinstance(value, str) and not 0 < len(value) <= 200:
        raise Refusal("INVALID_CURSOR", "the cursor is not one this list gave out")
    result: T = value
    return result

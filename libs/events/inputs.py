"""Checks every way into the system shares: Postgres can store no NUL character in text or
jsonb, so input holding one is refused before it reaches a query."""

from __future__ import annotations

from typing import Any


def contains_nul(value: Any) -> bool:
    """Whether a NUL character is anywhere in `value` (strings in nested dicts and lists too,
    keys included)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False

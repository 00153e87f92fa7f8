"""CSV export of tickets, with cells that a spreadsheet would run as a formula defused."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Final

from services.tickets.state import TicketState

COLUMNS: Final = (
    "key",
    "type",
    "title",
    "status",
    "priority",
    "requester_id",
    "assignee_id",
    "tags",
    "locked",
    "created_at",
    "updated_at",
    "description",
)
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text; one starting like a formula gets a leading quote (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _write(rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def csv_header() -> str:
    return _write([COLUMNS])


def csv_row(t: TicketState) -> str:
    """One ticket as a CSV row (its line ending included)."""
    row = (
        t.key,
        t.type,
        t.title,
        t.status,
        t.priority,
        t.requester_id,
        t.assignee_id,
        ";".join(t.tags),
        "true" if t.locked else "false",
        t.created_at.isoformat(),
        t.updated_at.isoformat(),
        t.description,
    )
    return _write([[safe_cell(v) for v in row]])


def to_csv(tickets: Iterable[TicketState]) -> str:
    """The tickets as CSV, after the header row."""
    return csv_header() + "".join(csv_row(t) for t in tickets)

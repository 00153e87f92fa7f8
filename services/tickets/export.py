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


def to_csv(tickets: Iterable[TicketState]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for t in tickets:
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
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()

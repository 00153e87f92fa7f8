"""The CSV export as a stream: the tickets service answers it a page per reply (each fits the
bus), and the gateway sends each page on as it arrives, so neither side holds the whole file."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from libs.contracts.tickets import MAX_EXPORT_PAGE, CsvExport
from libs.events.errors import ServiceError

log = logging.getLogger(__name__)

MAX_EXPORT_ROWS: Final = 10_000
"""Tickets one CSV export holds at most."""

NextPage = Callable[[str, int], Awaitable[CsvExport]]
"""Fetch the page at a cursor, of at most so many rows."""


async def csv_pages(first: CsvExport, next_page: NextPage) -> AsyncIterator[str]:
    """The CSV text of `first` (fetched before the answer started, so a refusal is still an
    error answer), then of each page after it, up to MAX_EXPORT_ROWS rows."""
    page, sent = first, first.rows
    yield page.csv
    while page.next_cursor is not None and sent < MAX_EXPORT_ROWS:
        try:
            page = await next_page(page.next_cursor, min(MAX_EXPORT_PAGE, MAX_EXPORT_ROWS - sent))
        except ServiceError as exc:  # the status line is sent: all that is left is to end short
            log.error("the CSV export ended after %d rows: %s %s", sent, exc.code, exc.message)
            return
        sent += page.rows
        yield page.csv

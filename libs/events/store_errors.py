"""The event store's errors: a conflict on append, an event or a batch too large, an event no
reader could read back, an unknown position."""

from __future__ import annotations

MAX_EVENT_BYTES = 512 * 1024
"""An event's payload and metadata together; the bus refuses messages over its max_payload (1 MB
by default), and one refused message would stop the relay at it."""
MAX_BATCH_BYTES = 32 * 1024 * 1024
"""One append's events go as one JSON array, which Postgres holds as one jsonb value of at most
256 MB; jsonb takes up to six times the text (12 bytes for each `0,` of an array of zeros)."""


class StoreError(Exception):
    """Base of the event store's errors."""


class ConcurrencyError(StoreError):
    def __init__(self, stream_id: str, expected: int, actual: int | None) -> None:
        seen = "unknown" if actual is None else str(actual)
        super().__init__(f"stream {stream_id!r}: expected version {expected}, found {seen}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class EventTooLarge(StoreError):
    def __init__(self, type_name: str, size: int) -> None:
        super().__init__(
            f"a {type_name!r} event of {size} bytes is over the {MAX_EVENT_BYTES} bytes an event "
            "may have (the bus carries every event whole)"
        )
        self.size = size


class BatchTooLarge(StoreError):
    """An append whose events' JSON, together, is over what one Postgres jsonb value holds."""

    def __init__(self, count: int, size: int) -> None:
        super().__init__(
            f"an append of {count} events and {size} bytes is over the {MAX_BATCH_BYTES} bytes "
            "one append may carry; append them in smaller batches"
        )
        self.size = size


class UnreadableEvent(StoreError):
    """An event whose JSON the log's readers could not parse back (Python's `json` refuses an
    integer of over 4,300 digits): refused before it is written, or it would break every later
    read of its stream and of the log."""

    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(f"a {type_name!r} event could not be read back: {reason}")


class UnknownPosition(StoreError):
    def __init__(self, position: int) -> None:
        super().__init__(f"no event at global position {position}")
        self.position = position

"""What a service declares to receive events: a Consumer (its name, handlers and tables), the
HandlerContext a handler gets, the ids of events a handler appends, and the errors a failing
handler is reported with. libs/events/consumers.py delivers events to them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from libs.events.db import Conn
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.registry import DomainEvent
from libs.events.settings import Settings
from libs.events.store import EventStore


@dataclass
class HandlerContext:
    """What a handler gets besides its event: the transaction's connection and a way to append."""

    conn: Conn
    store: EventStore
    envelope: Envelope
    consumer: str
    service: str
    settings: Settings
    _appends: int = field(default=0, init=False)

    @property
    def metadata(self) -> Metadata:
        return Metadata(
            actor=Actor.service(self.service),
            correlation_id=self.envelope.metadata.correlation_id,
            causation_id=self.envelope.id,
            causation_depth=self.envelope.metadata.causation_depth + 1,
            service=self.service,
        )

    async def append(
        self, stream_id: str, events: Sequence[DomainEvent], *, expected_version: int
    ) -> list[Envelope]:
        """Append in this transaction. Ids derive from (consumer, causing event, stream, which
        append of this handler run), so a handler run twice for the same event can never write its
        events twice, and two appends to one stream in one run are two appends."""
        call = self._appends
        self._appends += 1
        ids = [
            derived_id(self.envelope.id, self.consumer, stream_id, call, i)
            for i in range(len(events))
        ]
        return await self.store.append(
            stream_id,
            events,
            expected_version=expected_version,
            metadata=self.metadata,
            ids=ids,
            conn=self.conn,
        )


def derived_id(cause: UUID, consumer: str, stream_id: str, call: int, index: int) -> UUID:
    """The id of the `index`-th event of a handler's `call`-th append, caused by `cause`.

    The first append of a run keeps the ids it always had (`consumer/stream/index`), unless a
    name could make that text ambiguous; every other one encodes its parts unambiguously, so
    look-alike names (`out` and `out#1`, `a/b` and `a` + `b/...`) never share an id."""
    if call == 0 and "/" not in consumer and "/" not in stream_id:
        return uuid.uuid5(cause, f"{consumer}/{stream_id}/{index}")
    return uuid.uuid5(cause, json.dumps([consumer, stream_id, call, index]))


Handler = Callable[[HandlerContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    """A durable subscription of one service: event type -> handler.

    A `replayable` consumer is a projection: `opsledger replay` truncates its `tables` and runs it
    again over the whole log. A non-replayable one reacts (appends events, starts side effects).
    """

    name: str
    handlers: Mapping[str, Handler]
    replayable: bool = True
    tables: tuple[str, ...] = ()
    exact: bool = False
    """Filter the bus by each handled type's own subject, not by its category: a consumer of
    one rare type in a busy category (`job.approval_requested` among every job event) is not
    sent the rest. Only for a consumer of a single type (the server this runs on takes one
    filter subject per consumer); a new consumer only (a durable's filter is not changed)."""

    @property
    def types(self) -> list[str]:
        return sorted(self.handlers)

    def subject_prefix(self) -> str:
        """The one category every handled type shares ('' when they span several)."""
        categories = {t.split(".", 1)[0] for t in self.handlers}
        return categories.pop() if len(categories) == 1 else ""

    def subject_filter(self, settings: Settings) -> str:
        """The bus subjects this consumer is sent: its one type's (`exact`), or its category's."""
        if self.exact:
            if len(self.handlers) != 1:
                raise ValueError(f"{self.name}: an exact consumer handles exactly one type")
            [only] = self.handlers
            return settings.event_subject(only)
        return settings.event_subject_filter(self.subject_prefix())


class ReplayInProgress(Exception):
    """A replay of this consumer is running: live work waits until it has finished."""


class HandlerFailed(Exception):
    """A handler raised; `envelope` is the event it failed on (maybe a gap event, not the one
    delivered)."""

    def __init__(self, envelope: Envelope, cause: BaseException, *, note: str = "") -> None:
        said = f" ({note})" if note else ""
        super().__init__(
            f"{envelope.type} {envelope.id} v{envelope.version}{said}: {describe(cause)}"
        )
        self.envelope = envelope
        self.cause = cause
        self.note = note


def describe(exc: BaseException) -> str:
    """repr(exc), or its type's name when its repr itself fails (a failure is never lost to
    a broken __repr__)."""
    try:
        return repr(exc)
    except Exception:
        return f"{type(exc).__name__} (its repr failed)"

"""What every people command shares: appending with the people projection applied in the same
transaction (read-your-writes inside this service) and the receipt of what was written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.contracts.people import Receipt, Written
from libs.events.consumers import append_and_project
from libs.events.db import Conn
from libs.events.envelope import Envelope, Metadata
from libs.events.registry import DomainEvent
from libs.events.runtime import Deps
from libs.events.store import ConcurrencyError
from services.people.projection import PEOPLE_PROJECTION


def written(envelopes: Sequence[Envelope]) -> list[Written]:
    """The last version written per stream, in the order first written."""
    last: dict[str, int] = {}
    for envelope in envelopes:
        last[envelope.stream_id] = max(envelope.version, last.get(envelope.stream_id, 0))
    return [Written(stream_id=s, version=v) for s, v in last.items()]


@dataclass
class Writer:
    """Bound to a running service's dependencies; the command classes build on it."""

    deps: Deps

    def __post_init__(self) -> None:
        self.projections = [self.deps.dispatcher(PEOPLE_PROJECTION, service="people")]

    async def _append(
        self,
        conn: Conn,
        stream_id: str,
        events: Sequence[DomainEvent],
        *,
        expected_version: int,
        meta: Metadata,
    ) -> list[Envelope]:
        return await append_and_project(
            self.deps.store,
            conn,
            self.projections,
            stream_id,
            events,
            expected_version=expected_version,
            metadata=meta,
        )

    async def _as_is(self, stream_id: str) -> Receipt:
        """The receipt of a command that found nothing to write: the stream as it stands."""
        version = await self.deps.store.stream_version(stream_id)
        return Receipt(written=[Written(stream_id=stream_id, version=version)])

    async def _end(self, stream_id: str, ended: DomainEvent, *, meta: Metadata) -> Receipt:
        """Append the event that ends a stream of two (a session's, a token's): at version 1,
        so ending it twice, or two ends racing, write it once; the loser gets the stream as is."""
        try:
            async with self.deps.store.transaction() as conn:
                appended = await self._append(
                    conn, stream_id, [ended], expected_version=1, meta=meta
                )
        except ConcurrencyError:
            return await self._as_is(stream_id)  # ended already, or meanwhile
        return Receipt(written=written(appended))

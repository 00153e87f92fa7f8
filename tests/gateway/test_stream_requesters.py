"""The live stream looks up a ticket's requester once per connection, not once per event."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.events.envelope import Actor, Envelope, Metadata, new_id
from services.gateway.stream import Requesters
from tests.gateway.helpers import Gateway


def ticket_event(stream_id: str, version: int) -> Envelope:
    return Envelope(
        id=new_id(),
        stream_id=stream_id,
        version=version,
        type="ticket.commented",
        schema_version=1,
        data={"comment_id": "c", "body": "hi", "internal": False},
        metadata=Metadata(actor=Actor.system(), service="test"),
        recorded_at=datetime.now(UTC),
        position=version,
    )


async def test_a_tickets_requester_is_looked_up_once_per_connection(gateway: Gateway) -> None:
    pool = gateway.deps.pool
    await pool.execute(
        "INSERT INTO gateway.ticket_access (stream_id, requester_id) VALUES ('ticket-1', 'alice')"
    )
    requesters = Requesters(gateway.deps)
    assert await requesters.of(ticket_event("ticket-1", 2)) == "alice"
    # the row is gone, yet the answer stands: the second event asked the database nothing
    await pool.execute("TRUNCATE gateway.ticket_access")
    assert await requesters.of(ticket_event("ticket-1", 3)) == "alice"
    # a ticket not projected yet is asked about again next time, not remembered as nobody's
    assert await requesters.of(ticket_event("ticket-2", 2)) is None
    await pool.execute(
        "INSERT INTO gateway.ticket_access (stream_id, requester_id) VALUES ('ticket-2', 'bob')"
    )
    assert await requesters.of(ticket_event("ticket-2", 3)) == "bob"

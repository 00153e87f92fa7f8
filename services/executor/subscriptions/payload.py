"""What one delivery sends: the event as `GET /api/v1/events` shows it (every SECRET field
redacted by the registry), as exact JSON bytes, and the headers that go with them."""

from __future__ import annotations

from uuid import UUID

from libs import signing
from libs.contracts.deliveries import DELIVERY_HEADER, EVENT_HEADER, EventDelivery
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry


def body(envelope: Envelope, registry: EventRegistry) -> bytes:
    """The JSON body of a delivery of `envelope` (as stored, redacted)."""
    shown = registry.redact(envelope)
    return (
        EventDelivery(
            id=shown.id,
            type=shown.type,
            stream_id=shown.stream_id,
            version=shown.version,
            position=shown.position,
            recorded_at=shown.recorded_at,
            actor=shown.metadata.actor,
            data=shown.data,
        )
        .model_dump_json()
        .encode()
    )


def headers(
    *, event_type: str, delivery_id: UUID, raw: bytes, secret: str | None
) -> dict[str, str]:
    """The request's headers: the event type, the delivery id (also the Idempotency-Key: the
    same on every attempt of this delivery) and, when the endpoint has a secret, the signature
    over this very body."""
    sent = {
        "Content-Type": "application/json",
        "User-Agent": "OpsLedger",
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: str(delivery_id),
        "Idempotency-Key": str(delivery_id),
    }
    if secret:
        sent[signing.HEADER] = signing.signature(secret, raw)
    return sent

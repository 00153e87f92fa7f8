"""The executor's contract for event deliveries (event subscriptions): what a delivery POSTs, the
delivery log of an endpoint, and a replay, with their RPC methods.

An endpoint registered with `events` (libs/contracts/jobs.py) is a subscription: each matching
event is POSTed to it as `EventDelivery` (the event as `GET /api/v1/events` shows it, secrets
redacted, its actor instead of the whole metadata), with `X-OpsLedger-Event`,
`X-OpsLedger-Delivery` (stable across retries) and `X-OpsLedger-Signature`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from libs.contracts.jobs import MAX_PAGE, Cursor, Id
from libs.events.contract import Method
from libs.events.envelope import Actor

EVENT_HEADER: Final = "X-OpsLedger-Event"
DELIVERY_HEADER: Final = "X-OpsLedger-Delivery"
POSITION_MAX: Final = 2**63 - 1

DeliveryState = Literal["pending", "delivered", "dead_lettered", "superseded", "cancelled"]
"""pending (waiting for its turn, its backoff or its answer), delivered (a 2xx), dead_lettered
(every attempt failed: it holds its stream until a replay), superseded (a replay re-sent its
event as a new delivery, or skipped it), cancelled (the endpoint stopped subscribing)."""


class EventDelivery(BaseModel):
    """The body of a delivery: one event of the log."""

    id: UUID
    type: str
    stream_id: str
    version: int
    position: int
    recorded_at: datetime
    actor: Actor
    data: dict[str, Any]


class Body(BaseModel):
    """A request: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class DeliveriesListIn(Body):
    id: Id
    """The endpoint's id."""
    state: DeliveryState | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    cursor: Cursor | None = None


class DeliveryOut(BaseModel):
    id: UUID
    """The delivery id, sent as X-OpsLedger-Delivery on every attempt."""
    webhook_id: str
    event_id: UUID
    type: str
    stream_id: str
    version: int
    position: int
    state: DeliveryState
    attempts: int
    replay: bool
    """Made by a replay (not the event's first delivery to this endpoint)."""
    next_attempt_at: datetime | None
    """When a pending delivery may be sent next (None once it is settled)."""
    last_status: int | None
    """The HTTP status of the last attempt (None: no answer, e.g. a timeout)."""
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = None


class ReplayBody(Body):
    """POST /webhooks/{id}/replay: re-send every matching event after the event at `after`
    (0: from the start of the log), in the log's commit order."""

    after: Annotated[int, Field(ge=0, le=POSITION_MAX)]


class ReplayIn(ReplayBody):
    id: Id


class ReplayOut(BaseModel):
    id: str
    after: int
    superseded: int
    """Open deliveries (pending or dead-lettered) the replay closed; their events after `after`
    are delivered again, with new delivery ids."""
    generation: int
    """How many replays this endpoint has had, this one included."""


# methods: `ns.rpc.executor.<name>`

DELIVERIES_LIST: Method[DeliveriesListIn, DeliveryPage] = Method(
    "executor", "webhooks.deliveries", DeliveriesListIn, DeliveryPage
)
REPLAY: Method[ReplayIn, ReplayOut] = Method("executor", "webhooks.replay", ReplayIn, ReplayOut)

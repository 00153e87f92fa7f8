"""Events written by the executor service (besides the job.* events of `catalog/rules.py`).

Streams: `webhook-<id>` (a registered outgoing endpoint: registered, changed, removed; its
`secret` is marked SECRET, so it never leaves the system: the events API and logs redact it)
and `roundrobin-<group>` (one event per turn of a round-robin assignment over one list of
users; `<group>` is a SHA-256 over the list, so every rule naming the same list shares its
rotation, and the stream's version is the turn number, decided by the store).

An endpoint with `events` is an event subscription (services/executor/subscriptions/); v2 of
`webhook.registered` and `webhook.changed` added `include_internal` (a v1 endpoint never asked
for internal comments).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from libs.events.registry import SECRET, DomainEvent, event, upcaster

WebhookKind = Literal["webhook", "slack", "discord", "teams", "mattermost"]


class _Endpoint(DomainEvent):
    """The whole endpoint, as `webhook.registered` and `webhook.changed` both carry it."""

    webhook_id: str
    name: str
    kind: WebhookKind
    url: Annotated[str, SECRET]
    """The URL may carry a token (chat incoming webhooks do): secret as a whole."""
    secret: Annotated[str | None, SECRET] = None
    events: list[str] | None = None
    by: str
    include_internal: bool = False
    """A subscription that also gets internal comments (v2; v1 payloads load as False)."""


@event("webhook.registered", version=2)
class WebhookRegistered(_Endpoint):
    """First event of `webhook-<id>`."""


@event("webhook.changed", version=2)
class WebhookChanged(_Endpoint):
    """A PATCH: the whole endpoint as it now is."""


@upcaster("webhook.registered", from_version=1)
@upcaster("webhook.changed", from_version=1)
def _endpoint_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "include_internal": False}


@event("webhook.removed")
class WebhookRemoved(DomainEvent):
    webhook_id: str
    by: str


@event("roundrobin.turn_taken")
class RoundRobinTurnTaken(DomainEvent):
    """Job `job_id`'s step `step` took the next turn of its group: `members[(version-1) % n]`."""

    job_id: str
    step: int = Field(ge=0)
    members: list[str]

"""Registered webhook endpoints: register, change, remove (streams `webhook-<id>`), and how one
is shown: never its secret, never a token in its URL (every part but the scheme, the host and
the first path segment is masked).

Only a `webhook` endpoint may have `events` (an event subscription; chat kinds are for actions):
`events` on a chat kind, at registration or as a PATCH leaves it, is refused (422). Each write
keeps the endpoint's subscription row in step in the same transaction (`subscriptions.cursors`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from libs.contracts.jobs import WebhookCreateIn, WebhookOut, WebhookUpdateIn
from libs.events.catalog.executor import WebhookChanged, WebhookRegistered, WebhookRemoved
from libs.events.consumers import append_and_project
from libs.events.envelope import Metadata
from libs.events.registry import DomainEvent
from libs.events.runtime import Deps
from libs.events.store import NO_STREAM, ConcurrencyError
from services.executor import queries
from services.executor.projection import WEBHOOKS_PROJECTION
from services.executor.refusals import Refusal
from services.executor.subscriptions.cursors import follow

MASK: Final = "****"


def webhook_stream(webhook_id: str) -> str:
    return f"webhook-{webhook_id}"


def mask_url(url: str) -> str:
    """`https://hooks.slack.com/services/****`: scheme, host (and port) and the first path
    segment kept; the user info, every later path segment, every query value and the fragment
    masked."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    host = parts.hostname or ""
    user = f"{MASK}@" if parts.username or parts.password else ""
    segments = parts.path.split("/")
    path = "/".join(segments[:2] + ([MASK] if len(segments) > 2 else []))
    query = "&".join(
        f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else MASK
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit(
        (parts.scheme, f"{user}{host}{port}", path, query, MASK if parts.fragment else "")
    )


def shown(row: queries.WebhookRow) -> WebhookOut:
    return WebhookOut(
        id=row.webhook_id,
        name=row.name,
        kind=row.kind,
        url=mask_url(row.url),
        has_secret=row.secret is not None,
        events=row.events,
        include_internal=row.include_internal,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass
class WebhookCommands:
    deps: Deps

    def __post_init__(self) -> None:
        self.projections = [self.deps.dispatcher(WEBHOOKS_PROJECTION, service="executor")]

    async def _write(
        self, webhook_id: str, events: list[DomainEvent], expected: int, meta: Metadata
    ) -> queries.WebhookRow:
        async with self.deps.store.transaction() as conn:
            try:
                written = await append_and_project(
                    self.deps.store, conn, self.projections, webhook_stream(webhook_id), events,
                    expected_version=expected, metadata=meta,
                )  # fmt: skip
            except ConcurrencyError:
                raise Refusal(
                    "CONCURRENT_CHANGE", "the webhook changed meanwhile; try again"
                ) from None
            row = await queries.webhook(conn, webhook_id)
            if row is None:
                raise RuntimeError(f"webhook {webhook_id} was written but not projected")
            await follow(conn, self.deps.store, row, position=written[-1].position)
        return row

    async def create(self, body: WebhookCreateIn, *, meta: Metadata) -> queries.WebhookRow:
        _refuse_chat_subscription(body.kind, body.events)
        webhook_id = f"wh_{secrets.token_hex(8)}"
        event = WebhookRegistered(
            webhook_id=webhook_id, name=body.name, kind=body.kind, url=body.url,
            secret=body.secret, events=body.events, include_internal=body.include_internal,
            by=meta.actor.id,
        )  # fmt: skip
        return await self._write(webhook_id, [event], NO_STREAM, meta)

    async def _current(self, webhook_id: str) -> tuple[queries.WebhookRow, int]:
        row = await queries.webhook(self.deps.pool, webhook_id)
        if row is None or row.removed:
            raise Refusal("NOT_FOUND", "the webhook was not found")
        version = await self.deps.store.stream_version(webhook_stream(webhook_id))
        return row, version

    async def update(self, body: WebhookUpdateIn, *, meta: Metadata) -> queries.WebhookRow:
        row, version = await self._current(body.id)
        event = WebhookChanged(
            webhook_id=row.webhook_id,
            name=body.name if body.name is not None else row.name,
            kind=body.kind if body.kind is not None else row.kind,
            url=body.url if body.url is not None else row.url,
            secret=None if "secret" in body.clear else (body.secret or row.secret),
            events=None
            if "events" in body.clear
            else (row.events if body.events is None else body.events),
            include_internal=row.include_internal
            if body.include_internal is None
            else body.include_internal,
            by=meta.actor.id,
        )
        _refuse_chat_subscription(event.kind, event.events)
        return await self._write(row.webhook_id, [event], version, meta)

    async def remove(self, webhook_id: str, *, meta: Metadata) -> None:
        row, version = await self._current(webhook_id)
        await self._write(
            row.webhook_id, [WebhookRemoved(webhook_id=webhook_id, by=meta.actor.id)], version, meta
        )


def _refuse_chat_subscription(kind: str, events: list[str] | None) -> None:
    """Only a `webhook` endpoint delivers events; a chat endpoint posts what actions say."""
    if events and kind != "webhook":
        raise Refusal(
            "VALIDATION_ERROR",
            f"a {kind} endpoint cannot subscribe to events: only a webhook endpoint can",
            {"events": "only for kind webhook"},
        )

"""NATS wiring: connecting, declaring the events stream, and request/reply between services."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from pydantic import BaseModel, ValidationError

from libs.events.envelope import Actor, Metadata, new_id
from libs.events.errors import ServiceError
from libs.events.settings import Settings

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0
REPLY_TOO_LARGE = "REPLY_TOO_LARGE"
"""The code of the error a caller gets instead of a reply the bus could not carry."""


def encode_reply(reply: dict[str, Any]) -> bytes:
    """A reply as it travels: UTF-8 JSON (not \\u-escaped, so its size is its text's size)."""
    return json.dumps(reply, default=str, ensure_ascii=False).encode()


def failure_reply(status: int, code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "status": status, "error": {"code": code, "message": message}}


def reply_budget(nc: NatsClient) -> int:
    """Bytes the items of one page may take in a reply: half the largest payload the server
    takes, which leaves room for the reply's envelope and for differences in JSON escaping."""
    return nc.max_payload // 2


async def connect_nats(url: str, *, name: str) -> NatsClient:
    servers = [part.strip() for part in url.split(",") if part.strip()]  # a cluster: a,b,c
    return await nats.connect(
        servers, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5
    )


async def ensure_event_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create (or update) the stream carrying every event, with the dedup window the relay needs."""
    config = StreamConfig(
        name=settings.stream_name,
        subjects=[settings.event_subject_filter()],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=7 * 24 * 3600.0,  # the store is the truth; the bus keeps a week for catch-up
        num_replicas=settings.stream_replicas,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


class RpcRequest(BaseModel):
    """What travels in a request: who asks, for which correlation, and the body."""

    actor: Actor
    role: str | None = None
    """The caller's role as the gateway authenticated it (requester, operator, admin)."""
    on_behalf_of: str | None = None
    """The person an API token acts for (the actor then names the token itself)."""
    correlation_id: str | None = None
    body: dict[str, Any] = {}

    def metadata(self, service: str) -> Metadata:
        """Metadata for the events this request causes in `service`: its actor, and its
        correlation id (a caller's own non-UUID request id becomes a stable UUID from it)."""
        raw = self.correlation_id
        try:
            correlation = UUID(raw) if raw else new_id()
        except ValueError:
            correlation = uuid5(NAMESPACE_URL, raw or "")
        return Metadata(actor=self.actor, correlation_id=correlation, service=service)


RpcHandler = Callable[[RpcRequest], Awaitable[Any]]


@dataclass
class RpcServer:
    """Answers `ns.rpc.<service>.<method>` in queue group `<service>`: replicas share the load."""

    nc: NatsClient
    settings: Settings
    service: str
    methods: dict[str, RpcHandler]
    concurrency: int = 64
    _subs: list[Any] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        for method, handler in self.methods.items():

            async def on_msg(msg: Msg, handler: RpcHandler = handler) -> None:
                await limit.acquire()
                task = asyncio.create_task(self._answer(msg, handler, limit))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

            sub = await self.nc.subscribe(
                self.settings.rpc_subject(self.service, method), queue=self.service, cb=on_msg
            )
            self._subs.append(sub)

    async def _answer(self, msg: Msg, handler: RpcHandler, limit: asyncio.Semaphore) -> None:
        try:
            reply: dict[str, Any]
            try:
                request = RpcRequest.model_validate_json(msg.data)
                result = await handler(request)
                reply = {"ok": True, "result": result}
            except ServiceError as exc:
                reply = {"ok": False, "error": exc.to_dict(), "status": exc.status}
            except ValidationError as exc:
                err = ServiceError.from_validation(exc)
                reply = {"ok": False, "error": err.to_dict(), "status": err.status}
            except Exception:
                log.exception("rpc %s failed", msg.subject)
                reply = failure_reply(500, "INTERNAL", "the service failed to answer")
            if msg.reply:
                await self._respond(msg, reply)
        finally:
            limit.release()

    async def _respond(self, msg: Msg, reply: dict[str, Any]) -> None:
        """Send `reply`, or an error in its place: never nothing, which would leave the caller
        waiting out its timeout (NATS refuses a payload over the server's max_payload)."""
        try:
            payload = encode_reply(reply)
        except (TypeError, ValueError):  # e.g. a str holding a lone surrogate
            log.exception("rpc %s: the reply cannot be encoded", msg.subject)
            payload = encode_reply(failure_reply(500, "INTERNAL", "the service failed to answer"))
        if len(payload) > self.nc.max_payload:
            log.error(
                "rpc %s: a reply of %d bytes is over the bus limit of %d bytes",
                msg.subject,
                len(payload),
                self.nc.max_payload,
            )
            payload = encode_reply(
                failure_reply(502, REPLY_TOO_LARGE, "the service's answer was too large to send")
            )
        try:
            await msg.respond(payload)
        except Exception:
            log.exception("rpc %s: sending the reply failed", msg.subject)
            with contextlib.suppress(Exception):  # logged above; the caller then times out
                await msg.respond(
                    encode_reply(
                        failure_reply(502, "REPLY_FAILED", "the service's answer was lost")
                    )
                )

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class RpcClient:
    """Sends a request to a service's queue group and turns an error reply into ServiceError."""

    nc: NatsClient
    settings: Settings

    async def call(
        self,
        service: str,
        method: str,
        body: dict[str, Any] | None = None,
        *,
        actor: Actor,
        role: str | None = None,
        on_behalf_of: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        request = RpcRequest(
            actor=actor,
            role=role,
            on_behalf_of=on_behalf_of,
            correlation_id=correlation_id,
            body=body or {},
        )
        subject = self.settings.rpc_subject(service, method)
        try:
            msg = await self.nc.request(
                subject,
                request.model_dump_json().encode(),
                timeout=timeout or self.settings.rpc_timeout_s,
            )
        except NoRespondersError:
            raise ServiceError(
                503, "SERVICE_UNAVAILABLE", f"no {service} service is running"
            ) from None
        except NatsTimeoutError:
            raise ServiceError(
                504, "SERVICE_TIMEOUT", f"{service} did not answer in time"
            ) from None
        except MaxPayloadError:  # the bus carries at most max_payload bytes per message
            raise ServiceError(
                413, "PAYLOAD_TOO_LARGE", f"the request is too large to send to {service}"
            ) from None
        reply = json.loads(msg.data)
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        raise ServiceError(
            int(reply.get("status", 500)),
            str(error.get("code", "INTERNAL")),
            str(error.get("message", "the service failed")),
            error.get("details"),
        )

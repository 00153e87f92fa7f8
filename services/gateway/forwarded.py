"""Forwarded headers, believed only from trusted proxies: an ASGI middleware that sets the
request's client address and scheme from X-Forwarded-For / X-Forwarded-Proto when (and only
when) the connection comes from a CIDR in OPSLEDGER_TRUSTED_PROXIES.

uvicorn's own proxy-header handling is off (libs/events/devstack.py): it believes 127.0.0.1 by
default, so anyone on the host could pick the address that per-IP rate limits count."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TypeAlias

from starlette.types import ASGIApp, Receive, Scope, Send

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOPS = 32
"""A longer X-Forwarded-For chain is cut to its rightmost hops (the ones proxies appended)."""


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of a forwarded entry or a peer: `a.b.c.d`, `a.b.c.d:port`, a bare IPv6,
    `[v6]` or `[v6]:port` (some proxies add the port), also RFC 7239-quoted; an IPv4-mapped
    IPv6 (a dual-stack listener's view of an IPv4 peer) is that IPv4 address."""
    text = value.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 has two colons at least
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _header_values(scope: Scope, name: bytes) -> list[str]:
    """Every comma-separated entry of every instance of header `name`, in order."""
    entries: list[str] = []
    for key, value in scope.get("headers", ()):
        if key == name:
            entries.extend(part.strip() for part in value.decode("latin-1").split(","))
    return entries


class ForwardedHeaders:
    """Rewrites scope["client"] and scope["scheme"] from the forwarded headers of a trusted peer.

    The client is the rightmost X-Forwarded-For address that is not itself a trusted proxy:
    every hop to its right was appended by a proxy we trust, and anything to its left was
    written by the client and is not believed. X-Forwarded-Proto is taken at the same hop when
    the proxies kept the two lists aligned, else its rightmost entry (set by our own peer)."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def _is_trusted(self, host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            client = scope.get("client")
            if client is not None and self._is_trusted(client[0]):
                scope = self._forwarded(scope, client)
        await self.app(scope, receive, send)

    def _forwarded(self, scope: Scope, client: tuple[str, int]) -> Scope:
        hops = [hop for hop in _header_values(scope, b"x-forwarded-for") if hop][-MAX_HOPS:]
        scope = dict(scope)
        index = len(hops)  # the index of the chosen hop; len(hops): our peer itself
        for position in range(len(hops) - 1, -1, -1):
            if _address(hops[position]) is None:
                break  # not an address: a proxy we trust wrote garbage; stop believing there
            index = position
            if not self._is_trusted(hops[position]):
                break
        if index < len(hops):
            scope["client"] = (str(_address(hops[index])), 0)
        protos = [p.lower() for p in _header_values(scope, b"x-forwarded-proto") if p]
        proto = protos[index] if len(protos) == len(hops) and index < len(hops) else None
        if proto is None and protos:
            proto = protos[-1]
        if proto in ("http", "https"):
            scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        return scope

"""Every outgoing HTTP request (webhooks, chat, runbooks, health checks) goes through `client()`.

From its first line it refuses private, loopback, link-local and other non-public targets,
decided on the address each name resolves to, for every hop of a redirect, unless
`OPSLEDGER_OUTBOUND_ALLOW` lists the host or a network holding the address. The connection is
made to the address that was checked, not to the name again, so a name that resolves to a
public address for the check and a private one for the connect (DNS rebinding) gains nothing.
Environment proxies are not used: a proxy would make the check about the proxy, not the target.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_REDIRECTS = 5


class OutboundRefused(httpx.TransportError):
    """A request to a target that is not public and not allowed; raised before connecting."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Which non-public targets may be reached anyway: host names (exact, any case) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, allow: str | Iterable[str]) -> OutboundPolicy:
        """`"10.0.0.0/8, hooks.internal, 127.0.0.1"`: CIDRs or addresses, and host names."""
        items = allow.split(",") if isinstance(allow, str) else list(allow)
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if any(ch.isspace() or ch in "/:@" for ch in item):
                    raise ValueError(f"{item!r} is neither a host name nor a CIDR") from None
                hosts.add(item.lower().rstrip("."))
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why `address` (which `host` resolved to) may not be reached, or None when it may."""
        if host.lower().rstrip(".") in self.hosts:
            return None
        plain = _unmapped(address)
        if any(plain in network for network in self.networks):
            return None
        if plain.is_global and not plain.is_multicast:
            return None
        return (
            f"refusing to connect to {host} ({plain}): not a public address; "
            "OPSLEDGER_OUTBOUND_ALLOW lists the hosts and networks that may be reached anyway"
        )


_NAT64: Final = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # RFC 6052, the well-known NAT64 prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215, local-use NAT64
)
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")  # deprecated, RFC 4291 2.5.5.1


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries, judged as that: ::ffff:127.0.0.1 is 127.0.0.1 to
    the kernel; behind NAT64 64:ff9b::a9fe:a9fe is 169.254.169.254; 2002:a00:1:: (6to4) and
    ::a00:1 (IPv4-compatible) name 10.0.0.1."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in prefix for prefix in _NAT64) or (
        address in _IPV4_COMPATIBLE and int(address) > 1  # not :: nor ::1
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


@dataclass
class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own network backend, behind the policy: resolve, check every address, then
    connect to a checked address (the first that accepts)."""

    policy: OutboundPolicy
    inner: httpcore.AsyncNetworkBackend = field(default_factory=httpcore.AnyIOBackend)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        for address in addresses:  # one non-public answer refuses the name: no mixing
            reason = self.policy.refusal(host, address)
            if reason is not None:
                raise OutboundRefused(reason)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {last}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("outgoing requests never use a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on the guarded backend."""

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=GuardedBackend(policy),
        )


async def answered(
    http: httpx.AsyncClient, url: str, *, content: bytes, headers: dict[str, str]
) -> int:
    """POST `content` and return the status as soon as the status line and headers are in,
    never reading the body: a receiver's endless or stalled body can neither hold the caller
    past its answer nor fill its memory. Redirects are not followed (a 3xx is returned)."""
    async with http.stream(
        "POST", url, content=content, headers=headers, follow_redirects=False
    ) as response:
        return response.status_code


def client(
    policy: OutboundPolicy, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT
) -> httpx.AsyncClient:
    """An httpx client that reaches only what `policy` allows; redirects are followed (each hop
    checked) up to MAX_REDIRECTS. Only http and https URLs can be sent at all."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
    )

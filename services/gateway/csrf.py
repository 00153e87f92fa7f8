"""Cross-site request forgery: an ASGI middleware that refuses (403 CROSS_SITE) a state-changing
browser request that did not come from our own origin.

The check is Go 1.25's net/http CrossOriginProtection (and OWASP's "verify the origin with
standard headers"): `Sec-Fetch-Site: same-origin` or `none` (typed in the address bar) passes and
any other value is refused; without it (older browsers), an `Origin` whose host is the request's
own Host, or whose origin is the public URL's, passes and any other is refused; with neither
header the request is not from a browser and passes. Safe methods are never checked.

A request that carries an `Authorization` header is exempt: the gateway then authenticates by
that header alone and ignores the cookie (services/gateway/auth.py), and browsers never add one
on their own to a cross-site request. Every other unsafe request is checked, whether it sends
the session cookie or none, which also stops a foreign page signing a browser in (login CSRF)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_FETCHES = frozenset({"same-origin", "none"})


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """The serialised origin of a URL, `scheme://host[:port]` as a browser sends it in `Origin`:
    lower-case, the default port left out, no trailing dot (None when it has no host)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    if not scheme or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class CrossSiteRefusal:
    """Refuses cross-origin unsafe requests from browsers (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, public_url: str | None) -> None:
        self.app = app
        self.trusted_origins = frozenset(o for o in [origin_of(public_url or "")] if o)

    def cross_site_reason(self, headers: Headers) -> str | None:
        """Why this unsafe request is refused as cross-site, or None when it may go on."""
        fetch_site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if origin is not None and origin_of(origin) in self.trusted_origins:
            return None
        if fetch_site is not None:
            if fetch_site.strip().lower() in SAME_ORIGIN_FETCHES:
                return None
            return f"the browser sent it from another site (Sec-Fetch-Site: {fetch_site})"
        if origin is None:
            return None  # neither header: not a browser, so no ambient cookie was used for it
        host = headers.get("host", "")
        if host and urlsplit(origin.strip()).netloc.lower() == host.lower():
            return None
        return f"the browser sent it from another origin ({origin})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        reason = None if "authorization" in headers else self.cross_site_reason(headers)
        if reason is None:
            await self.app(scope, receive, send)
            return
        response = error_response(
            403,
            "CROSS_SITE",
            f"refused: a state-changing request must come from this site; {reason}",
        )
        await response(scope, receive, send)

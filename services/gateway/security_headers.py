"""Security headers on every gateway answer: an ASGI middleware adding nosniff, a referrer
policy, framing refused (CSP frame-ancestors and X-Frame-Options), `Cache-Control: no-store` on
answers to authenticated requests (and those setting a cookie), and HSTS when the public URL is
https. The `server` banner is off in uvicorn itself (libs/events/devstack.py)."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.people.security import HOST_SESSION_COOKIE, SESSION_COOKIE

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    # signed approval links carry their signature in the URL: never hand it to another site
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
HSTS = "max-age=31536000"
"""A year; no includeSubDomains: other hosts of the domain are not ours to decide for."""


def is_authenticated(headers: Headers) -> bool:
    """Whether the request carries a credential (an answer to it may be someone's own data)."""
    if "authorization" in headers:
        return True
    names = (f"{SESSION_COOKIE}=", f"{HOST_SESSION_COOKIE}=")
    return any(part.strip().startswith(names) for part in headers.get("cookie", "").split(";"))


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, public_url: str | None) -> None:
        self.app = app
        self.hsts = (public_url or "").strip().lower().startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticated = is_authenticated(Headers(scope=scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if authenticated or "set-cookie" in headers:
                    headers["Cache-Control"] = "no-store"  # stronger than any other value
            await send(message)

        await self.app(scope, receive, send_with_headers)

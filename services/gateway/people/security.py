"""Credentials: argon2 password hashing, random secrets, SHA-256 digests compared in constant
time, HMAC-signed session cookies and the API token format."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.gateway.secret import derive_key

T = TypeVar("T")

HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, t=3, p=4)."""

# Each hash takes ~64 MiB and a CPU for ~0.1 s: bound how many run at once, so a burst of logins
# queues instead of exhausting memory.
_HASH_SLOTS = threading.BoundedSemaphore(4)

SESSION_COOKIE = "opsledger_session"
TOKEN_PREFIX = "olt"


def _bounded(fn: Callable[[], T]) -> T:
    with _HASH_SLOTS:
        return fn()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_bounded, lambda: HASHER.hash(password))


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


async def verify_password(stored: str | None, password: str) -> bool:
    """Check `password` against an argon2 hash. With no hash (unknown account) a dummy one is
    checked instead, so the answer takes as long and says the same."""

    def check() -> bool:
        try:
            ok = HASHER.verify(stored or _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and bool(stored)

    return await asyncio.to_thread(_bounded, check)


def needs_rehash(stored: str) -> bool:
    return HASHER.check_needs_rehash(stored)


def new_secret() -> str:
    """32 random bytes, URL-safe (no '.' so it can sit in a dotted cookie)."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """SHA-256 hex: right for high-entropy random values (tokens, session secrets)."""
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison (safe for any characters)."""
    return hmac.compare_digest(a.encode(), b.encode())


def _mac(secret: bytes, payload: str) -> str:
    mac = hmac.new(derive_key(secret, "session-cookie"), payload.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def sign_session(secret: bytes, session_id: str, session_secret: str) -> str:
    """Cookie value `<session id>.<session secret>.<HMAC-SHA256 of both>`."""
    payload = f"{session_id}.{session_secret}"
    return f"{payload}.{_mac(secret, payload)}"


def read_session_cookie(secret: bytes, value: str) -> tuple[str, str] | None:
    """(session id, session secret) when the signature holds, else None."""
    parts = value.split(".")
    if len(value) > 256 or len(parts) != 3:
        return None
    session_id, session_secret, mac = parts
    if not same(_mac(secret, f"{session_id}.{session_secret}"), mac):
        return None
    return session_id, session_secret


def format_token(token_id: str, token_secret: str) -> str:
    """`olt_<token id hex>_<secret>`: the id lets us find the row, the digest proves the rest."""
    return f"{TOKEN_PREFIX}_{UUID(token_id).hex}_{token_secret}"


def parse_token(value: str) -> str | None:
    """The token id inside a token string, or None when it is not shaped like one."""
    parts = value.split("_", 2)
    if len(value) > 256 or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    try:
        return str(UUID(hex=parts[1]))
    except ValueError:
        return None

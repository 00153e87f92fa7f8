"""Passwords and new secrets: argon2id hashing (bounded, off the event loop) and random values.
Password hashes are made, checked and kept here only; they never leave the people service."""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, t=3, p=4)."""

# Each hash takes ~64 MiB and a CPU for ~0.1 s: bound how many run at once, so a burst of logins
# queues instead of exhausting memory.
_HASH_SLOTS = threading.BoundedSemaphore(4)


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

"""Passwords and new secrets: argon2id hashing (bounded, off the event loop) and random values.
Password hashes are made, checked and kept here only; they never leave the people service.
A password is hashed in its NFKC form (libs/contracts/people.py `normalise_password`)."""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from libs.contracts.people import normalise_password

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
    normalised = normalise_password(password)
    return await asyncio.to_thread(_bounded, lambda: HASHER.hash(normalised))


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    rehash: bool = False
    """Right, and its hash should be made again: with newer hashing parameters, or because it
    was made before passwords were normalised (it matched the password only as typed)."""


async def check_password(stored: str | None, password: str) -> PasswordCheck:
    """Check `password` against an argon2 hash: its normalised form, then (when that differs)
    the form as typed, which hashes made before normalisation hold. With no hash (unknown
    account) a dummy one is checked instead, the same number of times, so the answer takes as
    long and says the same."""
    forms = list(dict.fromkeys([normalise_password(password), password]))

    def check() -> PasswordCheck:
        for form in forms:
            try:
                HASHER.verify(stored or _dummy_hash(), form)
            except (VerificationError, InvalidHashError):
                continue
            if not stored:
                return PasswordCheck(ok=False)
            return PasswordCheck(
                ok=True, rehash=form != forms[0] or HASHER.check_needs_rehash(stored)
            )
        return PasswordCheck(ok=False)

    return await asyncio.to_thread(_bounded, check)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the hash (`check_password`, without whether to rehash)."""
    return (await check_password(stored, password)).ok


def new_secret() -> str:
    """32 random bytes, URL-safe (no '.' so it can sit in a dotted cookie)."""
    return secrets.token_urlsafe(32)

"""Credential helpers: argon2 hashing (the people service's), signed session cookies (the
gateway's) and the token format (the people contract's)."""

from __future__ import annotations

import unicodedata

from libs.contracts import people as contract
from services.gateway.people import security
from services.people import security as passwords


async def test_passwords_hash_with_argon2id_and_verify() -> None:
    stored = await passwords.hash_password("s3cret-password")
    assert stored.startswith("$argon2id$") and "s3cret-password" not in stored
    assert await passwords.verify_password(stored, "s3cret-password")
    assert not await passwords.verify_password(stored, "wrong-password")
    assert not await passwords.verify_password("not a hash", "s3cret-password")


def test_a_session_cookie_round_trips_only_with_its_secret() -> None:
    value = security.sign_session(b"k" * 32, "sid", "sec")
    assert security.read_session_cookie(b"k" * 32, value) == ("sid", "sec")
    assert security.read_session_cookie(b"j" * 32, value) is None
    assert security.read_session_cookie(b"k" * 32, value + "x") is None
    assert security.read_session_cookie(b"k" * 32, "sid.sec.é") is None
    assert security.read_session_cookie(b"k" * 32, "no-dots") is None


def test_a_token_carries_its_id() -> None:
    token_id = "0190a5a0-0000-7000-8000-000000000001"
    token = contract.format_token(token_id, passwords.new_secret())
    assert token.startswith("olt_")
    assert contract.parse_token(token) == token_id
    assert contract.parse_token("olt_nothex_x") is None
    assert contract.parse_token("ghp_abc") is None


async def test_a_password_is_checked_normalised_then_as_typed() -> None:
    typed = unicodedata.normalize("NFD", "fenêtre ouverte")
    current = await passwords.check_password(await passwords.hash_password(typed), typed)
    assert (current.ok, current.rehash) == (True, False)
    legacy = await passwords.check_password(passwords.HASHER.hash(typed), typed)
    assert (legacy.ok, legacy.rehash) == (True, True)
    wrong = await passwords.check_password(passwords.HASHER.hash(typed), "fenetre ouverte")
    assert not wrong.ok

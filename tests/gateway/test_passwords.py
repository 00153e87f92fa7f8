"""Passwords: at least 12 characters, and not common or made of the user's own email or name;
a refusal says why, in zxcvbn's words."""

from __future__ import annotations

import unicodedata

import httpx

from libs.events.catalog.people import UserPasswordSet
from libs.events.envelope import Actor, ActorKind, Metadata
from libs.events.store import ANY
from services.people import security
from services.people.domain import user_stream
from tests.gateway.helpers import Gateway, login, register, settle

URL = "/api/v1/auth/register"


async def sign_up(
    client: httpx.AsyncClient, email: str, name: str, password: str
) -> httpx.Response:
    return await client.post(URL, json={"email": email, "name": name, "password": password})


async def test_a_password_shorter_than_twelve_characters_is_refused(gateway: Gateway) -> None:
    response = await sign_up(gateway.client(), "short@example.com", "Sho", "Zq8#vLp2!mK")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "12" in error["details"]["password"]


async def test_a_common_password_is_refused_with_the_reason(gateway: Gateway) -> None:
    response = await sign_up(gateway.client(), "common@example.com", "Cy", "password1234")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "WEAK_PASSWORD"
    assert "very common password" in error["message"]
    assert error["details"]["password"] == error["message"]
    listed = await gateway.deps.pool.fetchval("SELECT count(*) FROM people.users")
    assert listed == 0


async def test_a_password_made_of_ones_own_name_is_refused_but_not_for_others(
    gateway: Gateway,
) -> None:
    own = await sign_up(
        gateway.client(), "ada.lovelace@example.com", "Ada Lovelace", "adalovelace2024"
    )
    assert own.status_code == 422
    assert own.json()["error"]["code"] == "WEAK_PASSWORD"
    await register(gateway.client(), "grace@example.com", name="Grace", password="adalovelace2024")


async def test_a_long_passphrase_is_accepted(gateway: Gateway) -> None:
    await register(gateway.client(), "phrase@example.com", password="violet tractor under rain")


async def test_a_password_hashed_before_normalisation_still_signs_in_and_is_upgraded(
    gateway: Gateway,
) -> None:
    """A hash made before passwords were normalised holds the password as it was typed (here
    decomposed): that form still signs in, and its hash is made again from the normalised form,
    so from then on either form does."""
    typed = unicodedata.normalize("NFD", "Crème brûlée près de la fenêtre ouverte")
    user = await register(gateway.client(), "old@example.com", password=typed)
    legacy = security.HASHER.hash(typed)  # as hash_password made it before
    meta = Metadata(actor=Actor(kind=ActorKind.USER, id=user["id"]), service="people")
    await gateway.deps.store.append(
        user_stream(user["id"]),
        [UserPasswordSet(user_id=user["id"], password_hash=legacy)],
        expected_version=ANY,
        metadata=meta,
    )
    await settle(gateway.deps)
    await login(gateway.client(), "old@example.com", password=typed)
    stored = await gateway.deps.pool.fetchval(
        "SELECT password_hash FROM people.users WHERE user_id = $1", user["id"]
    )
    assert stored != legacy
    await login(gateway.client(), "old@example.com", password=unicodedata.normalize("NFC", typed))

"""Sessions: login sets a hardened signed cookie, logout revokes it server-side, tampered or
expired cookies are refused, and wrong credentials all get the same answer."""

from __future__ import annotations

import httpx
import pytest

from libs.contracts.people import digest
from services.gateway.people.security import HOST_SESSION_COOKIE, SESSION_COOKIE, sign_session
from services.people import security
from tests.gateway.helpers import PASSWORD, Gateway, SignedIn, login, register

LOGIN = "/api/v1/auth/login"


def cookie_of(client: httpx.AsyncClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value is not None
    return value


async def me_with_cookie(gateway: Gateway, value: str) -> httpx.Response:
    return await gateway.client().get("/api/v1/me", headers={"Cookie": f"{SESSION_COOKIE}={value}"})


async def test_login_sets_an_httponly_samesite_cookie_and_me_answers(gateway: Gateway) -> None:
    client = gateway.client()
    user = await register(client, "ann@example.com", name="Ann")
    response = await login(client, "ann@example.com")
    assert response.json() == user
    header = response.headers["set-cookie"].lower()
    assert header.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header
    assert "secure" not in header
    me = await client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {
        "id": user["id"],
        "email": "ann@example.com",
        "name": "Ann",
        "role": "admin",
    }


async def test_the_session_cookie_is_secure_over_https(gateway: Gateway) -> None:
    client = gateway.client(https=True)
    await register(client, "tls@example.com")
    response = await login(client, "tls@example.com")
    assert "secure" in response.headers["set-cookie"].lower()
    assert (await client.get("/api/v1/me")).status_code == 200


async def test_requests_without_credentials_are_unauthenticated(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_wrong_password_and_unknown_email_get_the_same_401(gateway: Gateway) -> None:
    client = gateway.client()
    await register(client, "bob@example.com")
    wrong = await client.post(LOGIN, json={"email": "bob@example.com", "password": "nope-nope"})
    unknown = await client.post(LOGIN, json={"email": "who@example.com", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "INVALID_CREDENTIALS"
    assert SESSION_COOKIE not in client.cookies


async def test_login_accepts_the_email_in_any_case(gateway: Gateway) -> None:
    client = gateway.client()
    await register(client, "case@example.com")
    await login(client, "  CASE@Example.com")


async def test_an_unknown_account_is_checked_against_a_dummy_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The unknown-email answer costs one argon2 verification, like a wrong password."""
    checked: list[str] = []
    real = security.HASHER

    class Spy:
        def verify(self, stored: str, password: str) -> bool:
            checked.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(security, "HASHER", Spy())
    assert await security.verify_password(None, PASSWORD) is False
    assert len(checked) == 1 and checked[0].startswith("$argon2id$")


async def test_logout_revokes_the_session_so_a_replayed_cookie_is_refused(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("carol@example.com")
    stolen = cookie_of(client)
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 204
    assert SESSION_COOKIE not in client.cookies  # the browser is told to forget it
    assert (await client.get("/api/v1/me")).status_code == 401
    replayed = await me_with_cookie(gateway, stolen)
    assert replayed.status_code == 401
    ended = await gateway.deps.pool.fetchval("SELECT end_reason FROM gateway.sessions")
    assert ended == "logout"


async def test_logging_out_ends_only_that_session(gateway: Gateway, signed_in: SignedIn) -> None:
    laptop, _ = await signed_in("dan@example.com")
    phone = gateway.client()
    await login(phone, "dan@example.com")
    await laptop.post("/api/v1/auth/logout")
    assert (await phone.get("/api/v1/me")).status_code == 200


@pytest.mark.parametrize("part", [0, 1, 2])
async def test_a_tampered_cookie_is_refused(
    gateway: Gateway, signed_in: SignedIn, part: int
) -> None:
    client, _ = await signed_in("eve@example.com")
    pieces = cookie_of(client).split(".")
    pieces[part] = pieces[part][:-1] + ("A" if pieces[part][-1] != "A" else "B")
    response = await me_with_cookie(gateway, ".".join(pieces))
    assert response.status_code == 401


async def test_a_cookie_signed_with_another_secret_is_refused(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("fay@example.com")
    session_id, session_secret, _ = cookie_of(client).split(".")
    forged = sign_session(b"some other secret", session_id, session_secret)
    assert (await me_with_cookie(gateway, forged)).status_code == 401


async def test_a_validly_signed_cookie_with_the_wrong_session_secret_is_refused(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    """The signature alone is not enough: the server checks the session secret's digest."""
    client, _ = await signed_in("gus@example.com")
    session_id = cookie_of(client).split(".")[0]
    guessed = sign_session(gateway.app.state.secret, session_id, security.new_secret())
    assert (await me_with_cookie(gateway, guessed)).status_code == 401


async def test_an_idle_session_expires_and_use_keeps_it_alive(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("hal@example.com")
    pool = gateway.deps.pool
    await pool.execute("UPDATE gateway.sessions SET started_at = now() - interval '11 hours'")
    assert (await client.get("/api/v1/me")).status_code == 200  # used: idle clock restarts
    await pool.execute("UPDATE gateway.sessions SET started_at = now() - interval '13 hours'")
    assert (await client.get("/api/v1/me")).status_code == 200
    await pool.execute(
        "UPDATE gateway.session_activity SET last_seen = now() - interval '12 hours 1 minute'"
    )
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_session_past_its_absolute_expiry_is_refused(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("ivy@example.com")
    await gateway.deps.pool.execute(
        "UPDATE gateway.sessions SET expires_at = now() - interval '1 second'"
    )
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_the_session_secret_is_stored_only_as_a_digest(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("jay@example.com")
    session_secret = cookie_of(client).split(".")[1]
    rows = await gateway.deps.pool.fetch("SELECT data FROM eventstore.events")
    assert session_secret not in repr([r["data"] for r in rows])
    stored = await gateway.deps.pool.fetchval("SELECT secret_hash FROM gateway.sessions")
    assert stored == digest(session_secret)


async def test_over_https_only_the_host_prefixed_cookie_is_the_session(gateway: Gateway) -> None:
    """A `__Host-` cookie only this host can set (Secure, Path=/, no Domain); a plain-named one,
    which a sibling host could toss in, is not read over https."""
    browser = gateway.client(https=True)
    await register(browser, "host@example.com")
    header = (await login(browser, "host@example.com")).headers["set-cookie"]
    assert header.startswith(f"{HOST_SESSION_COOKIE}=")
    assert "path=/;" in header.lower() + ";" and "domain" not in header.lower()
    value = browser.cookies.get(HOST_SESSION_COOKIE)
    assert value is not None
    assert (await browser.get("/api/v1/me")).status_code == 200
    tossed = gateway.client(https=True)
    tossed.cookies.set(SESSION_COOKIE, value)
    assert (await tossed.get("/api/v1/me")).status_code == 401
    plain = gateway.client()  # over http the plain name stays the session's
    plain.cookies.set(HOST_SESSION_COOKIE, value)
    assert (await plain.get("/api/v1/me")).status_code == 401
    out = await browser.post("/api/v1/auth/logout")
    assert out.status_code == 204, out.text
    assert out.headers["set-cookie"].startswith(f"{HOST_SESSION_COOKIE}=")
    assert HOST_SESSION_COOKIE not in browser.cookies

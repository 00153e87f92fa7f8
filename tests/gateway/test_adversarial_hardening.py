"""Adversarial tests of the hardening work (issue 7): each one is an attack, or an unlucky
operator's setup, that the hardened gateway still gets wrong. Each fails on the code it was
written against and passes once that defect is fixed.

Helpers live in this file only; everything runs on the real stack (Postgres, NATS, and uvicorn
where the HTTP server's own handling matters)."""

from __future__ import annotations

import asyncio
import contextlib
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from libs.contracts import people as contract
from libs.events.catalog.people import SessionStarted
from libs.events.contract import ask
from libs.events.embedded import free_port
from libs.events.envelope import Actor, ActorKind, Metadata, new_id
from libs.events.errors import ServiceError
from libs.events.http_serving import serve_http
from libs.events.settings import Settings
from libs.events.store import NO_STREAM
from libs.events.testing import eventually, isolated_system
from services.gateway.app import SERVICE as GATEWAY
from services.gateway.app import create_app
from services.gateway.people.ratelimit import Limit, RateLimits
from services.people.app import SERVICE as PEOPLE
from services.people.domain import session_stream
from tests.gateway.helpers import (
    PASSWORD,
    Gateway,
    SignedIn,
    running_gateway,
    settle,
    team_on_desk,
)
from tests.gateway.live_server import StreamReader, served_gateway, signed_up

# --- Access that ends -----------------------------------------------------------------------


async def test_a_token_minted_by_a_request_in_flight_at_deactivation_stays_dead_after_reactivation(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    """Attack: Bob sends `POST /api/v1/tokens`; the gateway authenticates him, and while the
    request is on its way to the people service an admin deactivates him (simulated here by
    sending the very RPC the gateway sends, on Bob's behalf, after the deactivation). The people
    service never checks that the owner is still active, and the gateway's read model does not
    end a token created after the deactivation (it does so for sessions, `_end_if_deactivated`).
    When the admin later reactivates Bob, that token comes to life, although "old sessions and
    tokens stay ended" after a reactivation.

    Safe: either the people service refuses to mint a token for a deactivated user (a 4xx), or
    the token starts revoked; in both cases it authenticates nobody after the reactivation."""
    admin, _ = await signed_in("admin@example.com")
    _, bob = await signed_in("bob@example.com")
    off = await admin.patch(f"/api/v1/users/{bob['id']}", json={"active": False})
    assert off.status_code == 200, off.text

    try:  # the request Bob sent just before, arriving now
        issued = await ask(
            gateway.deps.rpc,
            contract.CREATE_TOKEN,
            contract.TokenIn(name="in flight", scopes=["api"]),
            actor=Actor(kind=ActorKind.USER, id=bob["id"]),
            role="requester",
            on_behalf_of=bob["id"],
        )
    except ServiceError as refused:
        assert 400 <= refused.status < 500, refused
        return  # refused outright: safe

    on = await admin.patch(f"/api/v1/users/{bob['id']}", json={"active": True})
    assert on.status_code == 200, on.text
    await settle(gateway.deps)  # the bus has delivered everything to the gateway's read model
    me = await gateway.client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {issued.token.token}"}
    )
    assert me.status_code == 401, (
        "a token created after its owner was deactivated works again after the reactivation: "
        f"{me.status_code} {me.text}"
    )


async def test_the_sessions_list_pages_past_500_sessions(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    """Attack / unlucky user: a script that signs in on every run (or an attacker who stole the
    password and signs in from many places) leaves a user with more than 500 live sessions.
    `GET /api/v1/sessions` answers the newest 500 with `next_cursor: null`, so the rest can
    neither be seen nor, from the list, ended ("a user sees and revokes their own sessions").

    Safe: the list pages like every other list: following `next_cursor` reaches every live
    session (here 502: 501 plus the one this client signed in with)."""
    me, user = await signed_in("admin@example.com")
    meta = Metadata(actor=Actor(kind=ActorKind.USER, id=user["id"]), service="people")
    expires = datetime.now(UTC) + timedelta(days=7)
    for _ in range(501):  # what 501 logins write, without 501 argon2 checks
        sid = str(new_id())
        started = SessionStarted(
            session_id=sid, user_id=user["id"], secret_hash="0" * 64, expires_at=expires
        )
        await gateway.deps.store.append(
            session_stream(sid), [started], expected_version=NO_STREAM, metadata=meta
        )

    async def projected() -> bool:
        count = await gateway.deps.pool.fetchval("SELECT count(*) FROM gateway.sessions")
        return bool(count >= 502)

    await eventually(projected, timeout=60)

    seen: set[str] = set()
    params: dict[str, str] = {}
    for _ in range(100):
        page = await me.get("/api/v1/sessions", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen.update(item["id"] for item in body["items"])
        if not body.get("next_cursor"):
            break
        params = {"cursor": body["next_cursor"]}
    assert len(seen) == 502, f"only {len(seen)} of 502 live sessions can be listed"


# --- Forwarded headers and per-address limits -----------------------------------------------


@contextlib.asynccontextmanager
async def _gateway_listening_on(
    settings: Settings, database_url: str, nats_url: str, host: str
) -> AsyncIterator[tuple[FastAPI, str]]:
    """The gateway and people, served by uvicorn on `host` (as `opsledger run gateway` with
    OPSLEDGER_HOST=host), and the IPv4 loopback URL that reaches it."""
    system = isolated_system(settings, database_url, nats_url, services=(PEOPLE, GATEWAY))
    async with system as deps:
        port = free_port()
        app = create_app(deps)
        server, serving = await serve_http(app, host=host, port=port)
        try:
            yield app, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            server.force_exit = True
            await serving


async def _owner_login_after_attack(
    settings: Settings,
    database_url: str,
    nats_url: str,
    *,
    attacker: str,
    owner: str,
    listen_host: str = "127.0.0.1",
) -> httpx.Response:
    """Behind a trusted proxy at 127.0.0.1: an attacker whose proxy-written X-Forwarded-For is
    `attacker` fails 4 logins (the per-address failure limit is 3 here), then the owner, whose
    entry is `owner`, signs in with the right password. The owner's answer."""
    tuned = settings.model_copy(update={"trusted_proxies": "127.0.0.0/8"})
    async with (
        _gateway_listening_on(tuned, database_url, nats_url, listen_host) as (app, base),
        httpx.AsyncClient(base_url=base, timeout=20) as client,
    ):
        app.state.rate_limits = RateLimits(
            login_per_ip=Limit("login-ip", 1000, 86400),
            login_failures_per_ip=Limit("login-failed-ip", 3, 86400),
        )
        registered = await client.post(
            "/api/v1/auth/register",
            json={"email": "owner@example.com", "name": "Owner", "password": PASSWORD},
            headers={"X-Forwarded-For": owner},
        )
        assert registered.status_code == 201, registered.text
        for n in range(4):
            guess = await client.post(
                "/api/v1/auth/login",
                json={"email": f"victim{n}@example.com", "password": "not the password"},
                headers={"X-Forwarded-For": attacker},
            )
            assert guess.status_code in (401, 429), guess.text
        return await client.post(
            "/api/v1/auth/login",
            json={"email": "owner@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": owner},
        )


async def test_a_proxy_writing_ipv4_with_port_does_not_merge_every_client_into_one_address(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Unlucky operator: a trusted proxy (Azure Application Gateway, IIS ARR and others) writes
    `X-Forwarded-For: 203.0.113.7:50312`, client address with its port. forwarded.py takes an
    entry that is not a bare address as garbage and falls back to the proxy's own address, so
    every client shares one per-address bucket: one attacker's failed guesses from behind the
    proxy lock every other user out (429 with the right password): the owner lockout issue 7
    set out to end, back again.

    Safe: `ip:port` (and `[v6]:port`) entries are read as their address, so the owner at
    another address signs in (200)."""
    answer = await _owner_login_after_attack(
        settings, database_url, nats_url, attacker="198.51.100.66:40001", owner="203.0.113.7:50312"
    )
    assert answer.status_code == 200, answer.text


async def test_a_proxy_writing_bracketed_ipv6_does_not_merge_every_client_into_one_address(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """As above, for IPv6 clients written in the bracketed form `[2001:db8::7]:443` (or
    `[2001:db8::7]`), as RFC 7239 and many proxies write them: all such clients collapse onto
    the proxy's address, and one attacker locks them all out.

    Safe: the bracketed form (with or without a port) is read as its address; the owner signs
    in (200)."""
    answer = await _owner_login_after_attack(
        settings,
        database_url,
        nats_url,
        attacker="[2001:db8:1::66]:40001",
        owner="[2001:db8:2::7]:443",
    )
    assert answer.status_code == 200, answer.text


async def test_a_gateway_listening_on_all_interfaces_still_believes_its_ipv4_proxy(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Unlucky operator: the gateway listens on `::` (OPSLEDGER_HOST=::, the usual "all
    interfaces" in a container) and the proxy at 127.0.0.1 is trusted with
    `OPSLEDGER_TRUSTED_PROXIES=127.0.0.0/8`. http_serving binds a dual-stack socket (no
    IPV6_V6ONLY), so the proxy's connections arrive from `::ffff:127.0.0.1`, which is in no
    IPv4 network: forwarded.py ignores the proxy's X-Forwarded-For, every client counts as the
    proxy's one address, and one attacker's failed guesses lock every other user out (429 with
    the right password; the `Secure` cookie flag from X-Forwarded-Proto is lost too).

    Safe: an IPv4-mapped IPv6 peer is matched as its IPv4 address (`ipv4_mapped`), so the
    owner at another forwarded address signs in (200)."""
    answer = await _owner_login_after_attack(
        settings,
        database_url,
        nats_url,
        attacker="198.51.100.66",
        owner="203.0.113.7",
        listen_host="::",
    )
    assert answer.status_code == 200, answer.text


async def test_rotating_ipv6_addresses_within_one_slash_64_does_not_escape_the_limits(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    """Attack: an attacker holds an IPv6 /64 (every home line and VM gets one: 2^64 addresses)
    and sends each password guess from a new address in it. Every per-address limit
    (`login-ip`, `login-failed`, `login-failed-ip`) counts a single /128, so none of them ever
    trips: 30 guesses at one account in a row, all answered 401.

    Safe: IPv6 clients are counted by their /64 (the usual practice), so the per-(account,
    address) failure limit (5 per 15 minutes) answers 429 long before 30 guesses."""
    await signed_in("victim@example.com")
    codes = []
    for n in range(1, 31):
        attacker = gateway.client(f"2001:db8:abcd:12::{n:x}")
        guess = await attacker.post(
            "/api/v1/auth/login",
            json={"email": "victim@example.com", "password": f"guess number {n}"},
        )
        codes.append(guess.status_code)
    assert 429 in codes, f"30 guesses from one /64 were never slowed: {codes}"


# --- The open-streams cap -----------------------------------------------------------------


async def test_a_stream_whose_quota_row_was_lost_does_not_run_on_uncounted(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Unlucky operator / attacker: a stream's row in gateway.open_streams stops being beaten
    for longer than its expiry (Postgres failing over, or a gateway's event loop stalled for
    15 s on a busy 2-core host: `beat()` failures are suppressed) and the next opening deletes
    it as stale. The stream itself runs on: its later beats UPDATE no row, so it is never
    counted again, and its user opens a full new set of streams: here 4 live streams under a
    cap of 2 (an attacker can repeat it to hold any number).

    Safe: a stream whose row is gone notices at its next beat (the UPDATE matched no row) and
    either claims a slot again, within the cap, or ends; so within a couple of re-check
    intervals at most `streams_per_user` streams of the user remain open."""
    tuned = settings.model_copy(update={"stream_recheck_s": 1.0, "streams_per_user": 2})
    async with served_gateway(tuned, database_url, nats_url) as served:
        await signed_up(served.base, "admin@example.com")
        alice, alice_id = await signed_up(served.base, "alice@example.com")
        async with StreamReader(alice) as first, StreamReader(alice) as second:
            assert first.status == 200 and second.status == 200
            # their rows expired while their gateway could not beat; an opening deleted them
            await served.deps.pool.execute(
                "DELETE FROM gateway.open_streams WHERE user_id = $1", alice_id
            )
            async with StreamReader(alice) as third, StreamReader(alice) as fourth:
                assert third.status == 200 and fourth.status == 200, (third.body, fourth.body)
                await asyncio.sleep(5)  # several beats and re-checks of every stream
                alive = [r for r in (first, second, third, fourth) if not r.ended.is_set()]
                assert len(alive) <= 2, f"{len(alive)} streams open under a cap of 2"


# --- CSRF -------------------------------------------------------------------------------------


async def test_a_public_url_written_with_its_default_port_still_passes_its_own_origin(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Unlucky operator: `OPSLEDGER_PUBLIC_URL=https://ops.example.com:443` behind a proxy that
    rewrites Host (here to `gateway.internal:8080`). A browser never writes the default port in
    `Origin` (`https://ops.example.com`), and csrf.origin_of compares the raw netloc, so the
    site's own pages are refused 403 CROSS_SITE on every sign-up, sign-in and write from
    browsers that rely on `Origin` (no `Sec-Fetch-Site`, e.g. Safari before 16.4).

    Safe: origins are compared in their serialised form (scheme, host, port with the default
    port dropped), so the public URL's own origin passes."""
    tuned = settings.model_copy(update={"public_url": "https://ops.example.com:443"})
    async with running_gateway(tuned, database_url, nats_url) as gateway:
        transport = httpx.ASGITransport(app=gateway.app, client=("10.0.0.2", 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway.internal:8080"
        ) as browser:
            answer = await browser.post(
                "/api/v1/auth/register",
                json={"email": "ada@example.com", "name": "Ada", "password": PASSWORD},
                headers={"Origin": "https://ops.example.com"},
            )
    assert answer.status_code == 201, answer.text


# --- Passwords --------------------------------------------------------------------------------


async def test_a_password_is_checked_after_unicode_normalisation(gateway: Gateway) -> None:
    """Unlucky user: Zoé registers with a password typed on one system, which sends its accented
    letters precomposed (NFC: `è` is U+00E8), and signs in from another whose input method sends
    them decomposed (NFD: `e` + U+0300), as macOS file names and some keyboards do. The two
    strings look and mean the same, but the password is hashed and compared as raw code points,
    so the right password is answered 401 INVALID_CREDENTIALS (and counts as a failed guess
    towards the lockout).

    Safe (NIST SP 800-63B 5.1.1.2, ASVS 5.0 V6.2): passwords are normalised (NFKC or NFC)
    before hashing, checking and comparing, so either form signs in."""
    password = "Crème brûlée près de la fenêtre ouverte"
    client = gateway.client()
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": "zoe@example.com", "name": "Zoé", "password": password},
    )
    assert registered.status_code == 201, registered.text
    login = await gateway.client().post(
        "/api/v1/auth/login",
        json={"email": "zoe@example.com", "password": unicodedata.normalize("NFD", password)},
    )
    assert login.status_code == 200, login.text


# --- The session cookie -----------------------------------------------------------------------


async def test_over_https_the_session_cookie_is_host_prefixed(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    """Attack (cookie tossing): anyone who can set a cookie for a sibling host (a
    compromised or user-content subdomain: `Set-Cookie: opsledger_session=<the attacker's own
    session>; Domain=example.com; Path=/`) makes the victim's browser send two cookies of that
    name; the newer (the attacker's) comes last, and Starlette keeps the last one, so the
    victim now works in the attacker's account (session fixation / login CSRF, around the
    CSRF check). With the plain name `opsledger_session` nothing stops it.

    Safe (OWASP ASVS 5.0 V3.3.1): over https the session cookie is named with the `__Host-`
    prefix (Secure, Path=/, no Domain), which browsers refuse to let another host set; only
    such a cookie is read as the session."""
    await signed_in("admin@example.com")
    browser = gateway.client(https=True)
    answer = await browser.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    set_cookie = answer.headers["set-cookie"]
    assert "secure" in set_cookie.lower(), set_cookie
    assert set_cookie.startswith("__Host-"), (
        f"the session cookie has no __Host- prefix: {set_cookie}"
    )


# --- Quotas -----------------------------------------------------------------------------------


async def test_a_requester_cannot_write_to_the_log_without_any_per_user_limit(
    server_urls: tuple[str, str], tmp_path: Path
) -> None:
    """Attack: quotas cover only ticket creation (`tickets-user`) and comments
    (`comments-user`). Every other write a requester may make on their own ticket (adding and
    removing a tag, here) has no per-user limit: one requester appends events to the log, to
    the ticket's audit trail and to every staff member's live stream as fast as the gateway
    answers: 600 writes in a row, none refused, where a comment would have been refused after
    120.

    Safe: every write route counts against a per-user write limit (a named, overridable limit
    shared by replicas), so a burst of 5 times the comment limit gets 429 RATE_LIMITED with
    Retry-After."""
    async with team_on_desk(server_urls, tmp_path) as team:
        ticket = await team.open_ticket()
        alice = team.client(team.alice)
        codes: list[int] = []
        for _ in range(300):
            added = await alice.post(f"/api/v1/tickets/{ticket['key']}/tags", json={"tag": "spam"})
            removed = await alice.delete(
                f"/api/v1/tickets/{ticket['key']}/tags", params={"tag": "spam"}
            )
            codes += [added.status_code, removed.status_code]
            if 429 in codes:
                break
        assert set(codes) <= {200, 429}, codes
        assert 429 in codes, f"{len(codes)} tag writes by one requester, none limited"

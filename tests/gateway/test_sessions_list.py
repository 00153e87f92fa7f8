"""A user sees their own sessions (the current one marked) and ends any of them."""

from __future__ import annotations

from tests.gateway.helpers import Gateway, SignedIn, login
from tests.gateway.test_sessions import cookie_of


def session_id(cookie: str) -> str:
    return cookie.split(".")[0]


async def test_sessions_are_listed_with_the_current_one_marked(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    laptop, _ = await signed_in("two@example.com")
    phone = gateway.client()
    await login(phone, "two@example.com")
    listed = await laptop.get("/api/v1/sessions")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert {s["id"] for s in items} == {session_id(cookie_of(laptop)), session_id(cookie_of(phone))}
    current = [s["id"] for s in items if s["current"]]
    assert current == [session_id(cookie_of(laptop))]
    assert {"started_at", "last_seen_at", "expires_at"} <= set(items[0])


async def test_ending_another_of_ones_sessions_signs_that_one_out(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    laptop, _ = await signed_in("lost@example.com")
    phone = gateway.client()
    await login(phone, "lost@example.com")
    ended = await laptop.delete(f"/api/v1/sessions/{session_id(cookie_of(phone))}")
    assert ended.status_code == 204, ended.text
    assert (await phone.get("/api/v1/me")).status_code == 401
    assert (await laptop.get("/api/v1/me")).status_code == 200
    items = (await laptop.get("/api/v1/sessions")).json()["items"]
    assert [s["id"] for s in items] == [session_id(cookie_of(laptop))]
    again = await laptop.delete(f"/api/v1/sessions/{session_id(cookie_of(phone))}")
    assert again.status_code == 204


async def test_someone_elses_session_cannot_be_seen_or_ended(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    mine, _ = await signed_in("me@example.com")
    theirs, _ = await signed_in("them@example.com")
    their_id = session_id(cookie_of(theirs))
    assert their_id not in {s["id"] for s in (await mine.get("/api/v1/sessions")).json()["items"]}
    assert (await mine.delete(f"/api/v1/sessions/{their_id}")).status_code == 404
    assert (await mine.delete("/api/v1/sessions/no-such-session")).status_code == 404
    assert (await theirs.get("/api/v1/me")).status_code == 200


async def test_the_sessions_list_pages_newest_first_and_refuses_a_cursor_it_did_not_give(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    laptop, _ = await signed_in("pages@example.com")
    others = [gateway.client() for _ in range(2)]
    for other in others:
        await login(other, "pages@example.com")
    newest_first = [session_id(cookie_of(c)) for c in [*reversed(others), laptop]]
    first = await laptop.get("/api/v1/sessions", params={"limit": 2})
    assert first.status_code == 200, first.text
    assert [s["id"] for s in first.json()["items"]] == newest_first[:2]
    cursor = first.json()["next_cursor"]
    assert cursor
    rest = (await laptop.get("/api/v1/sessions", params={"limit": 2, "cursor": cursor})).json()
    assert [s["id"] for s in rest["items"]] == newest_first[2:]
    assert rest["next_cursor"] is None
    for bad in ("nope", cursor[:-4], "eyJiZWZvcmUiOiAxfQ=="):  # the last: {"before": 1}
        refused = await laptop.get("/api/v1/sessions", params={"cursor": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["code"] == "INVALID_CURSOR"
    too_many = await laptop.get("/api/v1/sessions", params={"limit": 201})
    assert too_many.status_code == 422

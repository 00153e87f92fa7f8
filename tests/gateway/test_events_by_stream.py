"""GET /api/v1/events?stream= reads one stream through its own index: in commit order, paged
by position like the global log, resumable from any position (also one of another stream)."""

from __future__ import annotations

from typing import Any

from libs.events.envelope import Actor, Metadata
from libs.events.store import ANY
from libs.events.testing import eventually
from tests.events_for_tests import Counted
from tests.gateway.helpers import Gateway, SignedIn

META = Metadata(actor=Actor.system(), service="test")


async def test_one_stream_pages_in_commit_order_and_resumes_after_any_position(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("admin@example.com")
    store = gateway.deps.store
    written = []
    for n in range(7):
        written += await store.append(
            "s-1" if n % 2 == 0 else "s-2", [Counted(n=n)], expected_version=ANY, metadata=META
        )

    async def page(**params: Any) -> dict[str, Any]:
        found: dict[str, Any] = (
            await admin.get("/api/v1/events", params={"stream": "s-1", **params})
        ).json()
        return found

    first = await eventually(lambda: page(limit=2), until=lambda p: len(p["items"]) == 2)
    assert [e["data"]["n"] for e in first["items"]] == [0, 2]
    second = await page(limit=2, cursor=first["next_cursor"])
    assert [e["data"]["n"] for e in second["items"]] == [4, 6]
    assert (await page(limit=2, cursor=second["next_cursor"]))["items"] == []
    # resuming after an event of another stream: s-1's events committed after it
    after_s2 = written[3].position  # n=3, in s-2
    assert [e["data"]["n"] for e in (await page(after=after_s2))["items"]] == [4, 6]
    assert (await page(limit=10))["next_cursor"] is None

"""Attacks on in-app notifications (services/executor/notifications/, the notify action): a
role with thousands of members, and hostile message text (NUL, control characters)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.events.settings import Settings
from tests.executor.conftest import FAST
from tests.executor.notices import inbox, people_known, queue_on
from tests.executor.stack import Stack
from tests.tickets.support import ADMIN, PEOPLE

MEMBERS = 3000


@pytest.fixture
def fast(settings: Settings) -> Settings:
    # the default action time limit (30 s), not FAST's 3 s: the attack must not rely on it
    return settings.model_copy(update={**FAST, "executor_action_timeout_s": 30.0})


@pytest.fixture
async def known(stack: Stack) -> AsyncIterator[Stack]:
    await people_known(stack.deps, len(PEOPLE))
    yield stack


def notify(to: str, message: str) -> dict[str, Any]:
    return {"type": "notify", "params": {"to": to, "message": message}}


async def test_notify_to_a_role_with_thousands_of_members_notifies_them_all(
    known: Stack,
) -> None:
    """HOLDS (about 4 s here). A role with 3,000 active members (a big desk's operators): one
    notify step is one transaction appending 3,000 streams, each with its projection applied
    inline, and its result lists every user and every id. It succeeds and reaches them all."""
    deps = known.deps
    await deps.pool.executemany(
        "INSERT INTO executor.people (user_id, role, active) VALUES ($1, 'operator', true) "
        "ON CONFLICT (user_id) DO NOTHING",
        [(f"u-bulk-{n:05d}",) for n in range(MEMBERS)],
    )
    began = time.monotonic()
    job_id = await queue_on(deps, [notify("role:operator", "all hands")], ticket="OPS-77")
    job = await known.settled(job_id, timeout=180)
    took = time.monotonic() - began
    assert job["state"] == "succeeded", (took, job["state"], job.get("last_error"))
    count = await deps.pool.fetchval(
        "SELECT count(*) FROM executor.notifications WHERE user_id LIKE 'u-bulk-%'"
    )
    assert count == MEMBERS, (count, took)


@pytest.mark.parametrize(
    "message",
    ["bell\x07 esc\x1b[2J del\x7f", "\u202eevil\u202c"],
    ids=["controls", "bidi"],
)
async def test_a_hostile_message_never_kills_the_step(known: Stack, message: str) -> None:
    """HOLDS. A notify message with terminal control characters or bidi overrides is stored
    and listed as written (escaping is the display's job). A NUL cannot get this far: jsonb
    refuses \\u0000, so neither a rule's job.queued nor a ticket field holding one is ever
    stored, and a rendered message only quotes stored data."""
    deps = known.deps
    job_id = await queue_on(deps, [notify("role:admin", message)], ticket="OPS-78")
    job = await known.settled(job_id, timeout=30)
    errors = [
        str(item.get("detail", {}).get("error"))
        for item in job["history"]
        if item["type"] == "job.step_failed"
    ]
    assert job["state"] == "succeeded", (job["state"], errors)
    [got] = await inbox(deps, ADMIN)
    assert got["message"] == message

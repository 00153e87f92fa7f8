"""The event loop a service process runs on: uvloop where it is installed, else asyncio's own.

A service's time goes to small socket reads and writes (asyncpg round trips, NATS messages,
HTTP) and to resuming the tasks that wait on them. uvloop does both in C over libuv: in
`bench.gateway` a ticket creation cost the process about a quarter less on it, and the p99 from
commit to handler at 1,000 ev/s fell by a third (`bench/results/`). It is the loop uvicorn picks
by itself when it owns the process; the services own theirs, so they pick it here.

`OPSLEDGER_EVENT_LOOP=asyncio` runs on asyncio's loop instead (to rule the loop out while
chasing a problem). Tests run on asyncio's loop; the CLI's process tests run on this one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CHOICE_VARIABLE = "OPSLEDGER_EVENT_LOOP"


def uses_uvloop() -> bool:
    """Whether `run` will use uvloop: installed, and not turned off by OPSLEDGER_EVENT_LOOP."""
    if os.environ.get(CHOICE_VARIABLE, "").strip().lower() == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401  # absent on Windows: uvicorn[standard] leaves it out there
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new loop of the chosen kind, as `asyncio.run` does."""
    if uses_uvloop():
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)

"""FastAPI dependency aliases shared by the gateway's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from libs.events.runtime import Deps


async def get_deps(request: Request) -> Deps:
    """`async` though it awaits nothing: FastAPI runs a plain `def` dependency in a worker
    thread, a thread hand-off on every request for one attribute read."""
    deps: Deps = request.app.state.deps
    return deps


DepsDep = Annotated[Deps, Depends(get_deps)]

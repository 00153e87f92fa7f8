"""A Bearer token and its owner read in one join (`queries.live_token`): whatever state the token
or its owner is in, `_from_token` must answer as the two separate reads did."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import asyncpg
import pytest

from libs.contracts.people import digest, format_token
from libs.events.db import create_pool, migrate, migrations_in
from libs.events.runtime import Deps
from services.gateway import auth

GATEWAY_MIGRATIONS = Path(auth.__file__).parent / "migrations"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    made = await create_pool(database_url)
    await migrate(made, migrations_in("gateway", GATEWAY_MIGRATIONS))
    yield made
    await made.close()


async def _token(
    pool: asyncpg.Pool,
    *,
    owner: str = "u-1",
    revoked: bool = False,
    expires: str | None = None,
    scopes: tuple[str, ...] = ("api",),
) -> tuple[str, str]:
    token_id = str(uuid.uuid4())
    value = format_token(token_id, "s3cret-" + token_id[:8])
    await pool.execute(
        "INSERT INTO gateway.tokens (token_id, user_id, name, scopes, token_hash, created_at, "
        "revoked_at, expires_at) VALUES ($1, $2, 't', $3, $4, now(), "
        "CASE WHEN $5 THEN now() END, now() + $6::text::interval)",
        token_id,
        owner,
        list(scopes),
        digest(value),
        revoked,
        expires,
    )
    return token_id, value


async def _user(pool: asyncpg.Pool, user_id: str, *, active: bool = True) -> None:
    await pool.execute(
        "INSERT INTO gateway.users (user_id, email, name, role, registered_at, active) "
        "VALUES ($1, $1 || '@example.com', 'Name ' || $1, 'operator', now(), $2)",
        user_id,
        active,
    )


async def test_a_token_authenticates_only_while_it_and_its_owner_are_live(
    pool: asyncpg.Pool,
) -> None:
    deps = cast(Deps, SimpleNamespace(pool=pool))
    await _user(pool, "u-1")
    await _user(pool, "u-off", active=False)
    live_id, live = await _token(pool, scopes=("api", "ingest"))
    _, later = await _token(pool, expires="1 hour")
    _, revoked = await _token(pool, revoked=True)
    _, expired = await _token(pool, expires="-1 second")
    _, deactivated = await _token(pool, owner="u-off")
    _, orphan = await _token(pool, owner="u-gone")  # the owner's row is missing

    who = await auth._from_token(deps, live)
    assert who is not None
    assert (who.user_id, who.email, who.name, who.role) == (
        "u-1",
        "u-1@example.com",
        "Name u-1",
        auth.Role.OPERATOR,
    )
    assert (who.token_id, who.scopes) == (live_id, frozenset({"api", "ingest"}))
    assert await auth._from_token(deps, later) is not None
    forged = live[:-1] + ("x" if live[-1] != "x" else "y")  # right id, wrong secret
    unknown = format_token(str(uuid.uuid4()), "whatever")
    for refused in (revoked, expired, deactivated, orphan, forged, unknown, "olt_nothex_x"):
        assert await auth._from_token(deps, refused) is None, refused

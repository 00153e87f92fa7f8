"""Upgrading a deployment where the gateway owned people: the people service's first migration
copies the gateway's people tables, with that projection's checkpoints, when it runs before the
gateway drops the password hashes; run after, it copies nothing (the new projection then builds
itself from the log). Either way the gateway keeps no password hash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from libs.events.db import Migration, create_pool, migrate, migrations_in, store_migrations

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = migrations_in("gateway", ROOT / "services" / "gateway" / "migrations")
PEOPLE = migrations_in("people", ROOT / "services" / "people" / "migrations")
BEFORE_THE_MOVE = [m for m in GATEWAY if m.name < "0003"]
GATEWAY_AFTER = [m for m in GATEWAY if m.name >= "0003"]
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    made = await create_pool(database_url)
    try:
        await migrate(made, store_migrations() + BEFORE_THE_MOVE)
        await made.execute(
            "INSERT INTO gateway.users VALUES ('u1', 'ann@example.com', 'Ann', 'admin', $1, now())",
            HASH,
        )
        await made.execute(
            "INSERT INTO gateway.sessions (session_id, user_id, secret_hash, started_at, "
            "expires_at) VALUES ('s1', 'u1', 'x', now(), now() + interval '1 day')"
        )
        await made.execute(
            "INSERT INTO gateway.tokens VALUES ('t1', 'u1', 'ci', '{api}', 'y', now(), NULL)"
        )
        await made.execute(
            "INSERT INTO eventstore.consumer_streams (consumer, stream_id, version) "
            "VALUES ('gateway-people', 'user-u1', 2), ('gateway-people', 'session-s1', 1)"
        )
        yield made
    finally:
        await made.close()


async def upgrade(pool: asyncpg.Pool, migrations: list[Migration]) -> None:
    await migrate(pool, store_migrations() + migrations)


async def gateway_columns(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'gateway' AND table_name = 'users'"
    )
    return {r["column_name"] for r in rows}


async def test_people_migrating_first_moves_the_rows_and_the_checkpoints(
    pool: asyncpg.Pool,
) -> None:
    await upgrade(pool, PEOPLE + GATEWAY_AFTER)
    assert await pool.fetchval("SELECT password_hash FROM people.users") == HASH
    assert await pool.fetchval("SELECT count(*) FROM people.sessions") == 1
    assert await pool.fetchval("SELECT name FROM people.tokens") == "ci"
    checkpoints = await pool.fetch(
        "SELECT stream_id, version FROM eventstore.consumer_streams WHERE consumer = 'people' "
        "ORDER BY stream_id"
    )
    assert [tuple(r) for r in checkpoints] == [("session-s1", 1), ("user-u1", 2)]
    assert "password_hash" not in await gateway_columns(pool)
    assert await pool.fetchval("SELECT role FROM gateway.users") == "admin"  # still authenticates


async def test_the_gateway_migrating_first_leaves_people_to_build_from_the_log(
    pool: asyncpg.Pool,
) -> None:
    await upgrade(pool, GATEWAY_AFTER)
    await upgrade(pool, PEOPLE)
    assert await pool.fetchval("SELECT count(*) FROM people.users") == 0
    consumers = await pool.fetchval(
        "SELECT count(*) FROM eventstore.consumer_streams WHERE consumer = 'people'"
    )
    assert consumers == 0  # no checkpoint without its rows: the projection replays it all
    assert "password_hash" not in await gateway_columns(pool)

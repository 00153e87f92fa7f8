"""Input that used to answer 500 (found by hand and by the property run) is a 4xx in the error
shape: huge `fields`, huge bulk keys, nesting hundreds of levels deep, lone surrogates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.gateway.helpers import Team, team_on_desk


@pytest.fixture(scope="module")
async def team(
    server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Team]:
    async with team_on_desk(server_urls, tmp_path_factory.mktemp("hostile")) as made:
        yield made


def error_of(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    return error


def nested(depth: int) -> str:
    """JSON of objects `depth` levels deep, written out (json.dumps itself stops near 1,000)."""
    return '{"a": ' * depth + '"deep"' + "}" * depth


def ticket(**fields: Any) -> dict[str, Any]:
    return {"type": "incident", "title": "Hostile", "fields": {"service": "api", **fields}}


async def post_raw(client: httpx.AsyncClient, path: str, text: str) -> httpx.Response:
    """A JSON body as written (json.dumps would escape a lone surrogate the same way)."""
    return await client.post(path, content=text, headers={"content-type": "application/json"})


async def test_fields_too_large_for_the_bus_are_refused_not_a_500(team: Team) -> None:
    client = team.client(team.alice)
    # over the body limit (1 MiB): refused before it is read
    huge = await client.post("/api/v1/tickets", json=ticket(impact="x" * 1_100_000))
    assert error_of(huge, 413)["code"] == "PAYLOAD_TOO_LARGE"
    # under the body limit, over the bound on fields (64 KiB)
    large = await client.post("/api/v1/tickets", json=ticket(impact="x" * 900_000))
    assert "fields" in error_of(large, 422)["details"]
    # the bound is on the JSON of all values, not one string: many small ones add up too
    many = {f"k{n}": "y" * 1_000 for n in range(70)}
    assert (
        "fields"
        in error_of(await client.post("/api/v1/tickets", json=ticket(**many)), 422)["details"]
    )


async def test_a_ticket_type_schema_too_large_is_refused(team: Team) -> None:
    field = {"key": "f", "label": "F", "type": "text", "help": "h" * 1_000}
    fields = [field | {"key": f"f{n}"} for n in range(80)]  # ~90 KB
    answer = await team.client(team.admin).post(
        "/api/v1/ticket-types", json={"key": "huge", "name": "Huge", "fields": fields}
    )
    assert "fields" in error_of(answer, 422)["details"]


async def test_bulk_with_huge_keys_is_refused_not_a_500(team: Team) -> None:
    operator = team.client(team.operator)
    as_reported = {"op": "close", "keys": ["K" * 6_000] * 200}  # 1.2 MB: over the body limit
    error_of(await operator.post("/api/v1/tickets/bulk", json=as_reported), 413)
    under_limit = {"op": "close", "keys": ["K" * 6_000] * 150}
    assert error_of(await operator.post("/api/v1/tickets/bulk", json=under_limit), 422)
    not_keys = {"op": "close", "keys": ["ops-1", "OPS-0", "OPS-1 "]}
    assert error_of(await operator.post("/api/v1/tickets/bulk", json=not_keys), 422)
    too_many = {"op": "close", "keys": [f"OPS-{n}" for n in range(1, 102)]}
    assert error_of(await operator.post("/api/v1/tickets/bulk", json=too_many), 422)


@pytest.mark.parametrize("depth", [33, 256, 600, 980])
async def test_deep_nesting_is_refused_not_a_500(team: Team, depth: int) -> None:
    client = team.client(team.alice)
    body = f'{{"type": "incident", "title": "t", "fields": {{"impact": {nested(depth)}}}}}'
    # past the parser's own recursion limit (~900 levels) the body is not JSON to us: 400
    error = error_of(await post_raw(client, "/api/v1/tickets", body), 400, 422)
    if error["code"] != "BAD_REQUEST":
        assert error["code"] == "VALIDATION_ERROR"
        assert "deeper" in json.dumps(error["details"])
    revision = f'{{"fields": [{nested(depth)}]}}'
    admin = team.client(team.admin)
    error_of(await post_raw(admin, "/api/v1/tickets/bulk", revision), 400, 422)
    put = await admin.put(
        "/api/v1/ticket-types/incident",
        content=revision,
        headers={"content-type": "application/json"},
    )
    error_of(put, 400, 422)


async def test_nesting_within_the_limit_still_works(team: Team) -> None:
    # a ticket type whose conditions nest as deep as conditions may (10 levels)
    condition: dict[str, Any] = {"field": "fields.kind", "op": "eq", "value": "a"}
    for _ in range(9):
        condition = {"all": [condition]}
    fields = [
        {"key": "kind", "label": "Kind", "type": "select", "options": ["a", "b"]},
        {"key": "detail", "label": "Detail", "type": "text", "shown_when": condition},
    ]
    made = await team.client(team.admin).post(
        "/api/v1/ticket-types", json={"key": "nested", "name": "Nested", "fields": fields}
    )
    assert made.status_code == 201, made.text


MARK = "<lone>"


def with_lone_surrogate(body: dict[str, Any]) -> str:
    """`body` as JSON with each MARK written as a lone surrogate, as a client may send it
    (Python's json decodes it into a str that no UTF-8 encodes)."""
    return json.dumps(body).replace(MARK, "\\ud800")


LONE_SURROGATES = [
    ("/api/v1/tickets", ticket(service=MARK)),
    ("/api/v1/tickets", ticket(**{MARK: 1})),
    ("/api/v1/tickets", ticket(notes=[MARK])),
    ("/api/v1/tickets", {**ticket(), "title": f"t{MARK}"}),
    ("/api/v1/tickets", {**ticket(), "description": MARK}),
    (
        "/api/v1/ticket-types",
        {"key": "s", "name": "S", "fields": [{"key": "a", "label": MARK, "type": "text"}]},
    ),
    ("/api/v1/auth/login", {"email": f"a{MARK}@example.com", "password": MARK}),
]


@pytest.mark.parametrize(("path", "body"), LONE_SURROGATES)
async def test_a_lone_surrogate_is_refused_not_a_500(
    team: Team, path: str, body: dict[str, Any]
) -> None:
    answer = await post_raw(team.client(team.admin), path, with_lone_surrogate(body))
    assert error_of(answer, 401, 422)["code"] in ("VALIDATION_ERROR", "INVALID_CREDENTIALS")


async def test_a_lone_surrogate_in_a_comment_or_a_tag_is_refused(team: Team) -> None:
    key = (await team.open_ticket())["key"]
    client = team.client(team.alice)
    for path, body in (("comments", {"body": MARK}), ("tags", {"tag": f"x{MARK}"})):
        answer = await post_raw(client, f"/api/v1/tickets/{key}/{path}", with_lone_surrogate(body))
        error_of(answer, 422)

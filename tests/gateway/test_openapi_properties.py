"""The gateway against its own OpenAPI document (schemathesis, property-based): every documented
operation, called with generated requests, never answers 5xx, answers only status codes it
documents, and every answer matches its declared schema and content type.

The gateway, the people and the tickets service run on real Postgres and NATS. Their connections
belong to the test's event loop, so the app is served by uvicorn on a free port in that loop, and
the (blocking) schemathesis run sends real HTTP to it from a worker thread.

Callers are the admin (the first account), by session cookie or, half the time, by API token, so
the admin-only paths run too; the ticket, ticket-type, user and token path parameters sometimes
name existing ones. About half the valid JSON bodies carry one hostile value in place of one of
theirs, of the kinds schemathesis never generates and that once answered 500: text with lone
surrogates, strings of 70 KB to 1.1 MB (past every string bound, the bus's message limit and
the body limit), and nesting 33 to 400 levels deep. Bounded for CI: a fixed number of examples
per operation and generation mode, derandomized (the same requests on every run), no
shrinking, no example database."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import (
    APIOperation,
    Case,
    CheckContext,
    CheckFunction,
    GenerationMode,
    Response,
)
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from libs.events.embedded import LOCALHOST, free_port
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.approvals import app as approvals_app
from services.executor import app as executor_app
from services.gateway import app as gateway_app
from services.gateway.people import ratelimit
from services.gateway.people.security import SESSION_COOKIE
from services.people import app as people_app
from services.rules import app as rules_app
from services.tickets import app as tickets_app
from tests.gateway.helpers import PASSWORD, SignedIn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EXCLUDED = {
    "GET /api/v1/stream",  # Server-Sent Events: the answer never ends
    "POST /api/v1/auth/logout",  # would end the session the run signs in with
}
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}
"""Examples per operation and mode: ~30 operations x 40 requests, ~20s."""


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


LONE_SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
HOSTILE_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.tuples(st.text(max_size=8), LONE_SURROGATES, st.text(max_size=8)).map("".join),
    st.sampled_from([70_000, 300_000, 900_000, 1_100_000]).map(lambda size: "x" * size),
    st.sampled_from([33, 100, 256, 400]).map(nested),
)
"""What schemathesis does not generate (its strings are always UTF-8 encodable and short)."""


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value nested in `value`, in a stable order."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        keys = list(item) if isinstance(item, dict) else range(len(item))
        for key in keys:
            found.append((item, key))
            if isinstance(item[key], dict | list):
                stack.append(item[key])
    return found


def plant(body: Any, hostile: Any, pick: int) -> Any:
    """`body` (a JSON object or array) with one of its values, chosen by `pick`, replaced by
    `hostile`; the whole body when it holds none."""
    body = copy.deepcopy(body)  # the generated value is hypothesis's, not ours to change
    slots = _slots(body)
    if not slots:
        return hostile
    container, key = slots[pick % len(slots)]
    container[key] = hostile
    return body


def invalid_body_rejected(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """`negative_data_rejection`, for invalid bodies and path parameters only. A query string has
    no types: schemathesis counts e.g. a repeated scalar parameter (FastAPI takes the last) or
    one value for a list parameter as invalid, though it is valid on the wire."""
    data = case.meta.phase.data if case.meta is not None else None
    location = getattr(data, "parameter_location", None)
    if location not in (ParameterLocation.BODY, ParameterLocation.PATH):
        return None
    return negative_data_rejection(ctx, response, case)


COMMON_CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHECKS = {
    GenerationMode.POSITIVE: COMMON_CHECKS,
    GenerationMode.NEGATIVE: [*COMMON_CHECKS, invalid_body_rejected],
}

UNLIMITED = ratelimit.Limit("unlimited", 1_000_000, 60)
NO_RATE_LIMITS = ratelimit.RateLimits(
    register_per_ip=UNLIMITED,
    register_per_email=UNLIMITED,
    login_per_ip=UNLIMITED,
    login_failures_per_account=UNLIMITED,
)


@dataclass(frozen=True)
class Seeded:
    """The admin's credentials and existing data the generated paths sometimes name."""

    cookie: str
    token: str
    ticket: str
    ticket_type: str
    user_id: str
    spare_token_id: str

    def path_parameters(self, path: str) -> dict[str, str]:
        if path.startswith("/api/v1/tickets/{key}"):
            return {"key": self.ticket}
        if path.startswith("/api/v1/ticket-types/{key}"):
            return {"key": self.ticket_type}
        if "{user_id}" in path:
            return {"user_id": self.user_id}
        if "{token_id}" in path:
            return {"token_id": self.spare_token_id}
        return {}


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: pytest owns the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:
        return None


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` over real HTTP from this event loop; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host=LOCALHOST,
        port=port,
        log_config=None,
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn has no "started" event to wait on
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.05)
    try:
        yield f"http://{LOCALHOST}:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def running_system(
    settings: Settings, database_url: str, nats_url: str
) -> AsyncIterator[Deps]:
    """Every service in one System, as `opsledger dev` runs them."""
    services = [
        people_app.SERVICE,
        gateway_app.SERVICE,
        tickets_app.SERVICE,
        rules_app.SERVICE,
        executor_app.SERVICE,
        approvals_app.SERVICE,
    ]
    async with isolated_system(settings, database_url, nats_url, services=services) as deps:
        yield deps


async def seed(client: httpx.AsyncClient) -> Seeded:
    """Sign up the admin and another user, sign in, make two API tokens, open one ticket."""

    async def ok(response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    account = {"email": "admin@example.com", "name": "Admin", "password": PASSWORD}
    await ok(await client.post("/api/v1/auth/register", json=account), 201)
    other = {"email": "other@example.com", "name": "Other", "password": PASSWORD}
    user = await ok(await client.post("/api/v1/auth/register", json=other), 201)
    login = {"email": account["email"], "password": PASSWORD}
    await ok(await client.post("/api/v1/auth/login", json=login))
    cookie = client.cookies[SESSION_COOKIE]
    token = await ok(
        await client.post("/api/v1/tokens", json={"name": "t", "scopes": ["api"]}), 201
    )
    spare = await ok(
        await client.post("/api/v1/tokens", json={"name": "spare", "scopes": ["api"]}), 201
    )

    # the tickets service learns of the admin from the event log: retry until it has
    async def open_ticket() -> httpx.Response:
        body = {"type": "incident", "title": "db is down", "fields": {"service": "db"}}
        return await client.post("/api/v1/tickets", json=body)

    opened = await eventually(open_ticket, until=lambda r: r.status_code == 201, timeout=20)
    return Seeded(
        cookie=cookie,
        token=token["token"],
        ticket=opened.json()["key"],
        ticket_type="incident",
        user_id=user["id"],
        spare_token_id=spare["id"],
    )


Operation = APIOperation[Any, Any, Any, Any]
Answers = dict[str, collections.Counter[int]]
"""Status codes answered, per operation."""


def _hypothesis_test(
    base_url: str, seeded: Seeded, operation: Operation, mode: GenerationMode, answers: Answers
) -> Callable[[], None]:
    strategy = operation.as_strategy(generation_mode=mode)
    fixed = seeded.path_parameters(operation.path)
    if fixed and mode is GenerationMode.POSITIVE:
        strategy = st.one_of(
            strategy, operation.as_strategy(generation_mode=mode, path_parameters=fixed)
        )
    checks = CHECKS[mode]
    planted = mode is GenerationMode.POSITIVE  # negative data is refused anyway, 413 included

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(
        case=strategy,
        by_token=st.booleans(),
        hostile=st.one_of(st.none(), st.tuples(HOSTILE_VALUES, st.integers(0, 1_000))),
    )
    def run(case: Case[Any], by_token: bool, hostile: tuple[Any, int] | None) -> None:
        if hostile is not None and planted and isinstance(case.body, dict | list):
            # sent as written: json.dumps escapes a lone surrogate ("\\ud800") as a client would
            case.body = json.dumps(plant(case.body, *hostile)).encode()
        # a Bearer header, when sent, is the only credential the gateway considers
        headers = {"Authorization": f"Bearer {seeded.token}"} if by_token else {}
        response = case.call_and_validate(
            base_url=base_url,
            headers=headers,
            cookies={SESSION_COOKIE: seeded.cookie},
            checks=checks,
            timeout=30,
        )
        answers[operation.label][response.status_code] += 1

    return run


def has_inputs(operation: Operation) -> bool:
    parts = ("path_parameters", "query", "headers", "cookies", "body")
    return any(len(getattr(operation, part)) for part in parts)


def run_schemathesis(base_url: str, seeded: Seeded) -> tuple[Answers, list[str]]:
    """Every operation in every mode; (what each answered, what failed)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    answers: Answers = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is broken
        operation = result.ok()
        if operation.label in EXCLUDED:
            continue
        answers[operation.label] = collections.Counter()
        for mode in EXAMPLES:
            if mode is GenerationMode.NEGATIVE and not has_inputs(operation):
                continue  # nothing to make invalid
            test = _hypothesis_test(base_url, seeded, operation, mode, answers)
            try:
                test()
            except (Exception, FailureGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return answers, failures


async def test_every_operation_keeps_its_contract(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with running_system(settings, database_url, nats_url) as deps:
        app = gateway_app.create_app(deps)
        app.state.rate_limits = NO_RATE_LIMITS
        async with serving(app) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as client:
                seeded = await seed(client)
            answers, failures = await asyncio.to_thread(run_schemathesis, base_url, seeded)
    assert not failures, "\n\n".join(failures)
    # the run reached the operations as a signed-in admin, not just their refusals
    assert len(answers) >= 30, sorted(answers)
    signed_out = {op: n for op, n in answers.items() if n[401] and op != "POST /api/v1/auth/login"}
    assert not signed_out, f"the run's credentials stopped working: {signed_out}"
    succeeded = [op for op, n in answers.items() if any(200 <= s < 300 for s in n)]
    assert len(succeeded) >= 20, answers
    # the hostile values were sent: some bodies were over the limit, others refused as invalid
    assert sum(n[413] for n in answers.values()) >= 5, answers


# What the property run found, pinned: each of these answered 500 before.

NUL = "a\x00b"


async def test_a_nul_character_in_input_is_refused_not_a_500(signed_in: SignedIn) -> None:
    client, _ = await signed_in("admin@example.com")
    answers = [
        await client.post("/api/v1/auth/login", json={"email": NUL, "password": PASSWORD}),
        await client.post(
            "/api/v1/auth/register",
            json={"email": f"{NUL}@example.com", "name": "N", "password": PASSWORD},
        ),
        await client.post(
            "/api/v1/auth/register",
            json={"email": "n@example.com", "name": NUL, "password": PASSWORD},
        ),
        await client.post("/api/v1/tokens", json={"name": NUL, "scopes": ["api"]}),
        await client.get("/api/v1/tokens", params={"cursor": NUL}),
        await client.get("/api/v1/users", params={"cursor": NUL}),
        await client.patch(f"/api/v1/users/{quote(NUL)}", json={"role": "operator"}),
        await client.get("/api/v1/events", params={"type": NUL}),
    ]
    for answer in answers:
        assert answer.status_code == 422, (answer.request.url, answer.text)
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_position_beyond_a_bigint_is_refused_not_a_500(signed_in: SignedIn) -> None:
    client, _ = await signed_in("admin@example.com")
    too_far = await client.get("/api/v1/events", params={"after": str(2**63)})
    assert too_far.status_code == 422, too_far.text
    unknown = await client.get("/api/v1/events", params={"after": str(2**63 - 1)})
    assert unknown.status_code == 400, unknown.text
    for cursor in ("²", "9" * 20, "-1", "1.0"):  # "²".isdigit(), but int("²") fails
        answer = await client.get("/api/v1/events", params={"cursor": cursor})
        assert answer.status_code == 400, (cursor, answer.text)
        assert answer.json()["error"]["code"] == "INVALID_CURSOR"

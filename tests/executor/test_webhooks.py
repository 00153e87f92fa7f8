"""The webhook action over real HTTP: a signed, templated JSON body with `Idempotency-Key: <job
id>`; a failing endpoint is retried with backoff, then dead-lettered with the last error; an
operator's retry runs it again; a target the outbound policy refuses is not retried."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from libs import signing
from libs.events.errors import ServiceError
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.executor.app import SERVICE as EXECUTOR
from services.tickets.app import SERVICE as TICKETS
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.tickets.support import ADMIN, ALICE, OPERATOR, PEOPLE, Who, register


def hook(webhook_id: str, body: object = None) -> dict[str, object]:
    params: dict[str, object] = {"webhook_id": webhook_id}
    if body is not None:
        params["body"] = body
    return {"type": "webhook", "params": params}


async def test_a_webhook_is_posted_signed_templated_and_keyed_by_the_job(
    stack: Stack, receiver: Receiver
) -> None:
    key = await stack.ticket()
    webhook_id = await stack.webhook(f"{receiver.url}/hooks/abc", secret="topsecret")
    body = {"text": "{{ ticket.key }}: {{ ticket.title }}", "n": 1}
    job_id = await stack.queue([hook(webhook_id, body)], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "succeeded"
    [got] = receiver.received
    assert got.path == "/hooks/abc"
    assert json.loads(got.body) == {"text": f"{key}: API is down", "n": 1}
    assert got.headers["idempotency-key"] == job_id and got.headers["x-opsledger-step"] == "0"
    assert signing.verify("topsecret", got.headers["x-opsledger-signature"], got.body)


async def test_a_failing_webhook_backs_off_then_dead_letters_and_a_retry_runs_it_again(
    stack: Stack, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500, 503, 200]
    key = await stack.ticket()
    webhook_id = await stack.webhook(receiver.url)
    job_id = await stack.queue([hook(webhook_id)], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 3
    assert job["last_error"] == "127.0.0.1 answered HTTP 503"
    types = [h["type"] for h in job["history"]]
    assert types.count("job.step_failed") == 3 and types.count("job.retry_scheduled") == 2
    assert types.count("job.retry_due") == 2 and types[-1] == "job.dead_lettered"
    scheduled = [h for h in job["history"] if h["type"] == "job.retry_scheduled"]
    for item in scheduled:  # full jitter under the cap of the test's settings (1 s)
        due = datetime.fromisoformat(item["detail"]["due_at"])
        assert 0 <= (due - datetime.fromisoformat(item["at"])).total_seconds() <= 1.0
    assert len({r.headers["idempotency-key"] for r in receiver.received}) == 1
    dead = await stack.call("jobs.list", {"state": "dead_lettered"})
    assert [j["id"] for j in dead["items"]] == [job_id]

    again = await stack.call("jobs.retry", {"id": job_id})
    assert again["state"] == "queued"
    job = await stack.settled(job_id)
    assert job["state"] == "succeeded" and job["attempts"] == 4 and len(receiver.received) == 4
    assert [h["type"] for h in job["history"]][-4:] == [
        "job.retry_requested", "job.started", "job.step_succeeded", "job.succeeded",
    ]  # fmt: skip
    assert job["history"][-4]["actor"] == {"kind": "user", "id": OPERATOR.id}


async def test_only_a_dead_letter_can_be_retried(stack: Stack, receiver: Receiver) -> None:
    key = await stack.ticket()
    job_id = await stack.queue([hook(await stack.webhook(receiver.url))], ticket=key)
    await stack.settled(job_id)
    error = await _refused(stack, "jobs.retry", {"id": job_id})
    assert (error.status, error.code) == (409, "NOT_DEAD_LETTERED")
    missing = await _refused(stack, "jobs.retry", {"id": "nope"})
    assert (missing.status, missing.code) == (404, "NOT_FOUND")


async def test_a_target_the_outbound_policy_refuses_is_not_retried(stack: Stack) -> None:
    key = await stack.ticket()
    webhook_id = await stack.webhook("http://10.255.255.1/hook")
    job_id = await stack.queue([hook(webhook_id)], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert "not a public address" in job["last_error"]


async def test_a_template_that_fails_is_a_clear_step_failure(
    stack: Stack, receiver: Receiver
) -> None:
    key = await stack.ticket()
    webhook_id = await stack.webhook(receiver.url)
    job_id = await stack.queue([hook(webhook_id, {"x": "{{ ticket.nope }}"})], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert "template" in job["last_error"] and receiver.received == []


async def test_webhooks_never_show_their_secret_or_url_token(stack: Stack) -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETTOKEN?token=abc"
    created = await stack.call(
        "webhooks.create", {"name": "chat", "kind": "slack", "url": url, "secret": "k"}, by=ADMIN
    )
    assert created["url"] == "https://hooks.slack.com/services/****?token=****"
    assert created["has_secret"] is True and "secret" not in created
    listed = await stack.call("webhooks.list", {}, by=ADMIN)
    got = await stack.call("webhooks.get", {"id": created["id"]}, by=ADMIN)
    changed = await stack.call(
        "webhooks.update", {"id": created["id"], "name": "renamed", "clear": ["secret"]}, by=ADMIN
    )
    for shown in (*listed["items"], got, changed):
        assert "XXXXSECRETTOKEN" not in json.dumps(shown) and "abc" not in shown["url"]
    assert changed["name"] == "renamed" and changed["has_secret"] is False
    events = await stack.deps.store.read_stream(f"webhook-{created['id']}")
    redacted = [stack.deps.store.registry.redact(e).data for e in events]
    assert all(d["secret"] != "k" and d["url"] != url for d in redacted)
    await stack.call("webhooks.delete", {"id": created["id"]}, by=ADMIN)
    assert (await stack.call("webhooks.list", {}, by=ADMIN))["items"] == []


async def test_only_admins_manage_webhooks_and_only_staff_see_jobs(stack: Stack) -> None:
    error = await _refused(stack, "webhooks.list", {}, by=OPERATOR)
    assert (error.status, error.code) == (403, "FORBIDDEN")
    error = await _refused(stack, "jobs.list", {}, by=ALICE)
    assert (error.status, error.code) == (403, "FORBIDDEN")


async def _refused(
    stack: Stack, method: str, body: dict[str, object], *, by: Who = OPERATOR
) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        await stack.call(method, body, by=by)
    return caught.value


async def test_an_action_over_its_time_limit_fails_and_is_retried(
    fast: Settings, database_url: str, nats_url: str
) -> None:
    quick = fast.model_copy(update={"executor_action_timeout_s": 0.5})
    receiver = await Receiver(hold_first=True).start()
    system = isolated_system(
        quick, database_url, nats_url, services=(TICKETS, EXECUTOR), timers=True
    )
    try:
        async with system as deps:
            stack = Stack(deps)
            for who, role in PEOPLE.items():
                await register(deps, who, role)
            await eventually(
                lambda: deps.pool.fetchval("SELECT count(*) FROM tickets.people"),
                until=lambda n: n == len(PEOPLE),
            )
            key = await stack.ticket()
            job_id = await stack.queue([hook(await stack.webhook(receiver.url))], ticket=key)
            job = await stack.settled(job_id)
    finally:
        await receiver.stop()
    assert job["state"] == "succeeded" and job["attempts"] == 2
    [failed] = [h for h in job["history"] if h["type"] == "job.step_failed"]
    assert failed["error"] == "the webhook action did not finish within 0.5 s"

"""The SMTP password never reaches a step's error (the job's history, GET /jobs)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from libs.events.settings import Settings
from services.executor.actions.mail import smtp_server
from tests.executor.test_mail import _stack, mail

PASSWORD = "s3cr3t/Pa#ss?word"


@pytest.mark.parametrize(
    "url",
    [f"smtp://bot:{PASSWORD}@mail.example.com:587", "smtp://bot:hunter2@mail.example.com:hunter2"],
)
def test_a_malformed_url_error_does_not_quote_the_password(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        smtp_server(url)
    assert "s3cr3t" not in str(raised.value) and "hunter2" not in str(raised.value)


async def test_a_password_not_percent_encoded_does_not_reach_the_jobs_history(
    fast: Settings, database_url: str, nats_url: str
) -> None:
    # an operator pastes a generated password without percent-encoding its '/'
    url = f"smtp://bot:{PASSWORD}@mail.example.com:587"
    settings = fast.model_copy(update={"smtp_url": SecretStr(url)})
    async for stack in _stack(settings, database_url, nats_url):
        key = await stack.ticket()
        job = await stack.settled(
            await stack.queue([mail(to="a@example.com", subject="s", body="b")], ticket=key)
        )
        assert job["state"] == "dead_lettered"
        assert "s3cr3t" not in str(job), job["last_error"]

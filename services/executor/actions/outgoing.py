"""POSTing a JSON payload to a registered endpoint: what the webhook action and the chat actions
(slack, discord, teams, mattermost) share.

The endpoint must be registered with the action's kind (a Slack payload sent to a Discord URL
would only be refused there). The request carries `Idempotency-Key: <job id>` (the same on every
attempt: a receiver that keys on it drops repeats; `X-OpsLedger-Step` tells two steps of one job
apart) and, when the endpoint has a secret, `X-OpsLedger-Signature`. It goes through
`libs.outbound` (no private targets unless allowed). A 5xx, 408, 425, 429, a timeout or a lost
connection is retried; any other answer, a refused target or a missing endpoint is not. A
redirect is not followed: it would turn the POST into a GET without its body (302, 303) and
report success, or send the signed body to another host (307, 308). The answer's status line
decides; its body is never read (an endless one could neither hold the step nor fill memory)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from libs import signing
from libs.events.catalog.executor import WebhookKind
from libs.outbound import OutboundRefused, answered
from services.executor import queries
from services.executor.actions.base import ActionContext, StepFailed

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})


async def post(
    webhook_id: str, payload: Any, context: ActionContext, *, kind: WebhookKind
) -> dict[str, Any]:
    """POST `payload` to the endpoint `webhook_id`, which must be of `kind`."""
    endpoint = await queries.webhook(context.deps.pool, webhook_id)
    if endpoint is None or endpoint.removed:
        raise StepFailed(f"there is no webhook {webhook_id!r}", retryable=False)
    if endpoint.kind != kind:
        raise StepFailed(
            f"webhook {webhook_id!r} is registered as a {endpoint.kind} endpoint; "
            f"the {kind} action needs a {kind} one",
            retryable=False,
        )
    try:
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate, which only a template's literal can spell
        raise StepFailed("the payload is not valid UTF-8 text", retryable=False) from None
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OpsLedger",
        "Idempotency-Key": context.job_id,
        "X-OpsLedger-Step": str(context.step),
    }
    if endpoint.secret:
        headers[signing.HEADER] = signing.signature(endpoint.secret, raw)
    host = urlsplit(endpoint.url).hostname or "the endpoint"
    try:
        async with asyncio.timeout(context.timeout_s):
            status = await answered(context.http, endpoint.url, content=raw, headers=headers)
    except OutboundRefused as exc:
        raise StepFailed(str(exc), retryable=False) from None
    except httpx.InvalidURL:
        raise StepFailed(
            f"the URL of webhook {webhook_id!r} is not valid", retryable=False
        ) from None
    except TimeoutError:
        raise StepFailed(f"{host} did not answer within {context.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise StepFailed(f"{host}: {type(exc).__name__}: {exc}") from None
    if 200 <= status < 300:
        return {"status": status}
    if 300 <= status < 400:
        raise StepFailed(
            f"{host} answered HTTP {status}, a redirect: register the address it "
            "redirects to instead",
            retryable=False,
        )
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    raise StepFailed(f"{host} answered HTTP {status}", retryable=retryable)

"""webhook `{webhook_id, body?|message?}`: POST a JSON body to a registered endpoint.

The body is the rendered `body` template (every string in it rendered), or `{"text": message}`,
or else a summary of the job. It carries `Idempotency-Key: <job id>` (the same on every attempt:
the receiver drops repeats; `X-OpsLedger-Step` tells two webhook steps of one job apart) and,
when the endpoint has a secret, `X-OpsLedger-Signature`. It goes through `libs.outbound` (no
private targets unless allowed). A 5xx, 408, 425, 429, a timeout or a lost connection is
retried; any other answer, a refused target or a missing endpoint is not."""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from libs import signing
from libs.contracts.rules import OutgoingParams
from libs.outbound import OutboundRefused
from services.executor import queries
from services.executor.actions.base import Action, ActionContext, StepFailed

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})


def payload(params: OutgoingParams, context: ActionContext) -> Any:
    if params.body is not None:
        return params.body
    if params.message is not None:
        return {"text": params.message}
    values = context.values
    return {
        "job_id": context.job_id,
        "rule": values.get("rule"),
        "ticket": values.get("ticket"),
        "trigger": values.get("trigger"),
    }


async def run(params: OutgoingParams, context: ActionContext) -> dict[str, Any]:
    endpoint = await queries.webhook(context.deps.pool, params.webhook_id)
    if endpoint is None or endpoint.removed:
        raise StepFailed(f"there is no webhook {params.webhook_id!r}", retryable=False)
    body = json.dumps(payload(params, context), ensure_ascii=False, separators=(",", ":"))
    raw = body.encode()
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
        answer = await context.http.post(
            endpoint.url, content=raw, headers=headers, timeout=context.timeout_s
        )
    except OutboundRefused as exc:
        raise StepFailed(str(exc), retryable=False) from None
    except httpx.InvalidURL:
        raise StepFailed(
            f"the URL of webhook {params.webhook_id!r} is not valid", retryable=False
        ) from None
    except httpx.HTTPError as exc:
        raise StepFailed(f"{host}: {type(exc).__name__}: {exc}") from None
    if answer.is_success:
        return {"status": answer.status_code}
    retryable = answer.status_code >= 500 or answer.status_code in RETRYABLE_STATUSES
    raise StepFailed(f"{host} answered HTTP {answer.status_code}", retryable=retryable)


ACTION = Action(params=OutgoingParams, run=run)

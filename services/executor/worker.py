"""The executor's worker: claims claimable jobs and runs their steps, under the supervisor.

It sleeps until the projection NOTIFYs that a job became claimable (or a run finished and freed
a slot; every 30 s at the latest, in case a notification was lost with its connection), claims
up to its free slots, and claims and runs each job in its own task of one TaskGroup: each task
claims the oldest claimable job in its own short transaction (passing over rows taken meanwhile),
so a job starts as soon as it is claimed and no transaction spans many jobs; a run that fails
unexpectedly is logged, and its lease expiry hands the job to a worker again. Each step runs
under the per-action time limit and its outcome is recorded before the next one starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Final

import httpx

from libs.events.db import connect
from libs.events.runtime import Deps
from libs.events.wakeups import sleep_until_woken
from libs.outbound import OutboundPolicy, client
from services.executor.actions import ACTIONS, ActionContext, StepFailed, prepare
from services.executor.domain import LeaseLost
from services.executor.handlers import Claim, JobCommands
from services.executor.projection import JOBS_CHANNEL

log = logging.getLogger(__name__)

MAX_SLEEP_S: Final = 30.0
CLAIM_RETRY_S: Final = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Worker:
    deps: Deps
    name: str = field(default_factory=worker_name)

    def __post_init__(self) -> None:
        self.commands = JobCommands(self.deps)
        self.wake = asyncio.Event()
        self.running: set[str] = set()
        """The jobs this worker is running."""
        self.claiming = 0
        """Claims under way (each will run the job it gets, or end)."""

    async def run(self, deps: Deps, stopping: asyncio.Event) -> None:
        """Claim and run jobs until the process stops; a lost LISTEN connection is raised to
        the supervisor (which restarts this)."""
        url = deps.settings.database_url
        if url is None:
            raise RuntimeError("the executor needs the database URL to listen for jobs")
        listener = await connect(url, application="opsledger executor")
        lost: list[str] = []

        def on_terminated(_: object) -> None:
            lost.append("the LISTEN connection was closed")
            self.wake.set()

        policy = OutboundPolicy.parse(deps.settings.outbound_allow)
        try:
            listener.add_termination_listener(on_terminated)
            await listener.add_listener(JOBS_CHANNEL, lambda *_: self.wake.set())
            async with client(policy) as http, asyncio.TaskGroup() as group:
                while not stopping.is_set():
                    self.wake.clear()
                    free = deps.settings.executor_concurrency - len(self.running) - self.claiming
                    waiting = await self.commands.claimable(limit=free) if free > 0 else 0
                    for _ in range(waiting):
                        self.claiming += 1
                        group.create_task(self._claim_and_run(http))
                    if lost or listener.is_closed():
                        raise ConnectionError(lost[0] if lost else "the LISTEN connection closed")
                    if free > 0 and waiting == free:
                        continue  # maybe more are waiting
                    await sleep_until_woken(stopping, self.wake, MAX_SLEEP_S)
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    async def _claim_and_run(self, http: httpx.AsyncClient) -> None:
        """Claim the oldest claimable job and run it (a run that fails unexpectedly is logged;
        its lease expiry hands the job to a worker again). A finished run frees a slot and
        wakes the loop; so does a claim that failed, after CLAIM_RETRY_S (its rollback left the
        job claimable and sent no new NOTIFY). Finding nothing to claim wakes nothing, or a job
        the projection still shows claimable would be tried again at once, for ever."""
        try:
            claim = await self.commands.claim_next(worker=self.name)
        except Exception:
            log.exception("a claim failed; trying again in %.1f s", CLAIM_RETRY_S)
            asyncio.get_running_loop().call_later(CLAIM_RETRY_S, self.wake.set)
            return
        finally:
            self.claiming -= 1
        if claim is None:
            return
        self.running.add(claim.job.id)
        try:
            await self.run_job(claim, http)
        except LeaseLost as exc:
            log.warning("%s", exc)
        except Exception:
            log.exception("job %s attempt %d failed to run", claim.job.id, claim.attempt)
        finally:
            self.running.discard(claim.job.id)
            self.wake.set()

    async def run_job(self, claim: Claim, http: httpx.AsyncClient) -> None:
        """Run the claimed attempt from its first step not done, recording each outcome."""
        job = claim.job
        timeout = self.deps.settings.executor_action_timeout_s
        while job.state == "running" and (step := job.next_step) is not None:
            action = job.queued.actions[step]
            context = ActionContext(
                deps=self.deps,
                job_id=job.id,
                step=step,
                attempt=claim.attempt,
                ticket=job.queued.ticket,
                queued=claim.queued,
                values=job.queued.context,
                http=http,
                timeout_s=timeout,
            )
            kind = str(action.get("type"))
            try:
                params = prepare(kind, action.get("params") or {}, job.queued.context)
                async with asyncio.timeout(timeout):
                    result = await ACTIONS[kind].run(params, context)
            except StepFailed as failed:
                job = await self.commands.step_failed(
                    claim, step, failed.message, retryable=failed.retryable
                )
            except TimeoutError:
                error = f"the {kind} action did not finish within {timeout:g} s"
                job = await self.commands.step_failed(claim, step, error, retryable=True)
            except Exception as exc:  # an action's own bug: record it, let a retry try again
                log.exception("job %s step %d (%s) raised", job.id, step, kind)
                error = f"{kind} failed: {type(exc).__name__}: {exc}"
                job = await self.commands.step_failed(claim, step, error, retryable=True)
            else:
                job = await self.commands.step_done(claim, step, result)


async def run_worker(deps: Deps, stopping: asyncio.Event) -> None:
    """The executor's background task (one per replica)."""
    await Worker(deps).run(deps, stopping)

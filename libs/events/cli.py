"""The `opsledger` command: dev (everything, embedded servers), run (one service), replay,
parked events, migrations, rules as code. Every help text is written in whole sentences."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import click

from libs.events import event_loop, gc_policy
from libs.events.errors import ConfigurationError
from libs.events.logs import configure_logging
from libs.events.runtime import Service
from libs.events.settings import Settings

# Import paths, not imports: the command stays fast and libs never import services at load time.
SERVICE_MODULES: dict[str, str] = {
    # people first: in one process its migrations run before the gateway's (people's moves the
    # gateway's old people tables, which a later gateway migration trims)
    "people": "services.people.app",
    "gateway": "services.gateway.app",
    "tickets": "services.tickets.app",
    "executor": "services.executor.app",
    "rules": "services.rules.app",
    "approvals": "services.approvals.app",
}

SERVICE_NAMES = ", ".join(SERVICE_MODULES)

log = logging.getLogger("opsledger")


def load_service(name: str) -> Service:
    if name not in SERVICE_MODULES:
        raise click.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICE_MODULES)}")
    service: Service = importlib.import_module(SERVICE_MODULES[name]).SERVICE
    return service


def all_services() -> list[Service]:
    return [load_service(name) for name in SERVICE_MODULES]


def _run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` until it returns; SIGINT/SIGTERM set `stop` for a clean shutdown."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            event_loop.run(wrapper())
    except ConfigurationError as exc:
        raise click.ClickException(f"refusing to start: {exc}") from None


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """OpsLedger is ops automation and a service desk over an append-only event log.

    Settings come from OPSLEDGER_* environment variables (see the README). Run
    `opsledger COMMAND --help` to read what a command does.
    """
    settings = Settings()
    configure_logging(settings.log_level)
    ctx.obj = settings


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    settings: Settings = ctx.obj
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=clean) if clean else settings


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="The directory where the embedded servers keep their data (default .opsledger).",
)
@click.option("--port", type=int, help="The gateway's HTTP port (default 8080).")
@click.option("--host", help="The interface the gateway listens on (default 127.0.0.1).")
@click.option(
    "--processes",
    is_flag=True,
    help="Run each service as its own `opsledger run SERVICE` process, as Compose would.",
)
@click.pass_context
def dev(
    ctx: click.Context, data_dir: Path | None, port: int | None, host: str | None, processes: bool
) -> None:
    """Start the whole system, for development.

    Every service and the gateway run in this one process (with --processes, each in its own
    `opsledger run` process) on embedded NATS and Postgres under the data dir, unless
    OPSLEDGER_NATS_URL or OPSLEDGER_DATABASE_URL name other servers. While it runs, the other
    commands given the same data dir use its servers. If an embedded server (or, with
    --processes, a service's process) dies, dev stops and exits non-zero. Ctrl-C stops
    everything it started.
    """
    from libs.events.devstack import run_dev

    settings = _settings(ctx, data_dir=data_dir, port=port, host=host)
    services = all_services()
    gc_policy.tune_for_service()
    _run(lambda stop: run_dev(settings, services, stop, processes=processes))


@cli.command(
    help=f"""Run one service, for Compose or to scale out (run it again for another replica).

    SERVICE is one of: {SERVICE_NAMES}. It uses the servers that OPSLEDGER_DATABASE_URL and
    OPSLEDGER_NATS_URL name, or else those of an `opsledger dev` running on the same data dir.
    """,
    short_help="Run one service, for Compose or to scale out.",
)
@click.argument("service", type=click.Choice(list(SERVICE_MODULES)), metavar="SERVICE")
@click.option("--port", type=int, help="The HTTP port (for the gateway only).")
@click.option("--host", help="The interface to listen on (for the gateway only).")
@click.option(
    "--relay/--no-relay",
    default=True,
    help="Whether this process stands for relay leader; one process per database wins.",
)
@click.option(
    "--timers/--no-timers",
    default=True,
    help="Whether this process fires the durable timers that fall due.",
)
@click.pass_context
def run(
    ctx: click.Context,
    service: str,
    port: int | None,
    host: str | None,
    relay: bool,
    timers: bool,
) -> None:
    from libs.events.devstack import run_services, use_running_stack

    settings = use_running_stack(_settings(ctx, port=port, host=host))
    if not settings.database_url or not settings.nats_url:
        raise click.UsageError(
            "set OPSLEDGER_DATABASE_URL and OPSLEDGER_NATS_URL, or start `opsledger dev` on this "
            "data dir first"
        )
    chosen = load_service(service)
    gc_policy.tune_for_service()
    _run(lambda stop: run_services(settings, [chosen], stop, relay=relay, timers=timers))


@cli.command(
    help=f"""Rebuild a service's projections from the event log.

    SERVICE is one of: {SERVICE_NAMES}. It runs every event through the same handlers as live
    delivery does, so the rebuilt projections equal the live ones.
    """,
    short_help="Rebuild a service's projections from the event log.",
)
@click.argument("service", type=click.Choice(list(SERVICE_MODULES)), metavar="SERVICE")
@click.pass_context
def replay(ctx: click.Context, service: str) -> None:
    from tqdm import tqdm

    from libs.events.devstack import with_deps
    from libs.events.replay import replay_service

    chosen = load_service(service)
    settings = _settings(ctx)

    async def main(deps: Any) -> None:
        bar = tqdm(unit="event", desc=f"replay {service}")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        applied = await replay_service(chosen, deps, progress=progress)
        bar.close()
        click.echo(f"replayed {applied} events into {service}'s projections")

    event_loop.run(with_deps(settings, [chosen], main))


@cli.group()
def parked() -> None:
    """Show and retry the events that a consumer gave up on.

    A handler that keeps failing is retried with backoff and then parked; nothing is dropped.
    """


@parked.command("list")
@click.option("--consumer", help="Show only this consumer's parked events.")
@click.pass_context
def parked_list(ctx: click.Context, consumer: str | None) -> None:
    """List the parked events and timers, the oldest first.

    A parked timer is one that could not fire; the other timers fire on time regardless.
    """
    from libs.events.consumers import list_parked
    from libs.events.devstack import with_deps
    from libs.events.timers import list_parked_timers

    async def main(deps: Any) -> None:
        found = await list_parked(deps.pool, consumer=consumer)
        if not found:
            whom = f"for the consumer {consumer}" if consumer else "for any consumer"
            click.echo(f"No events are parked {whom}.")
        for p in found:
            click.echo(
                f"{p.event_id}  {p.consumer}  {p.type}  {p.stream_id}@{p.version}  "
                f"attempts={p.attempts}  {p.error}"
            )
        if consumer is None:
            for t in await list_parked_timers(deps.pool):
                click.echo(
                    f"timer {t.timer_id}  due {t.due_at.isoformat()}  {t.event_type} -> "
                    f"{t.target_stream}  could not fire: {t.error}"
                )

    event_loop.run(with_deps(_settings(ctx), all_services(), main))


@parked.command("retry")
@click.argument("event_id", type=click.UUID)
@click.pass_context
def parked_retry(ctx: click.Context, event_id: UUID) -> None:
    """Run a parked event's handlers again now.

    EVENT_ID is the id that `opsledger parked list` shows. An event whose handlers succeed leaves
    the list.
    """
    from libs.events.consumers import ReplayInProgress, retry_parked
    from libs.events.devstack import with_deps

    services = all_services()

    async def main(deps: Any) -> None:
        dispatchers = {}
        for service in services:
            dispatchers.update(service.dispatchers(deps))
        try:
            done = await retry_parked(deps.pool, dispatchers, event_id)
        except ReplayInProgress as exc:
            raise click.ClickException(
                f"a replay of {exc} is running and will run the event again; retry after it"
            ) from None
        click.echo(f"retried {done} parked handler(s) for {event_id}")

    event_loop.run(with_deps(_settings(ctx), services, main))


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply the store's and every service's schema migrations.

    The other commands also apply them when they start.
    """
    from libs.events.devstack import with_deps

    async def main(_: Any) -> None:
        click.echo("migrations applied")

    event_loop.run(with_deps(_settings(ctx), all_services(), main))


@cli.group()
def rules() -> None:
    """Export the rules as YAML, or apply a file.

    Rules as code: keep the file in git and review changes to it like code.
    """


@rules.command("export")
@click.pass_context
def rules_export(ctx: click.Context) -> None:
    """Print every rule that is not archived as YAML.

    Write it to a file with `opsledger rules export > rules.yaml`.
    """
    from libs.events.devstack import with_deps

    code = importlib.import_module("services.rules.rules_as_code")

    async def main(deps: Any) -> None:
        click.echo(await code.export(deps), nl=False)

    event_loop.run(with_deps(_settings(ctx), [load_service("rules")], main))


@rules.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The YAML file of rules, as `opsledger rules export` writes it.",
)
@click.option("--dry-run", is_flag=True, help="Show the plan and write nothing.")
@click.pass_context
def rules_apply(ctx: click.Context, path: str, dry_run: bool) -> None:
    """Make the rules match a YAML file.

    It shows the plan (create, change, unchanged), then applies it.

    Applying the same file again changes nothing. A file with any error is refused as a whole,
    each error with its line; rules the file does not name are left as they are.
    """
    from libs.events.devstack import with_deps

    code = importlib.import_module("services.rules.rules_as_code")
    text = Path(path).read_text(encoding="utf-8")

    async def main(deps: Any) -> None:
        plan = await code.apply(deps, text, source=path, dry_run=dry_run)
        click.echo(plan.report())

    try:
        event_loop.run(with_deps(_settings(ctx), [load_service("rules")], main))
    except code.InvalidFile as exc:
        raise click.ClickException(str(exc)) from None


def main() -> None:
    cli(prog_name="opsledger")


if __name__ == "__main__":
    main()

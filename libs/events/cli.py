"""The `opsledger` command: dev (everything, embedded servers), run (one service), replay,
parked events, migrations."""

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

from libs.events.errors import ConfigurationError
from libs.events.logs import configure_logging
from libs.events.runtime import Service
from libs.events.settings import Settings

# Import paths, not imports: the command stays fast and libs never import services at load time.
SERVICE_MODULES: dict[str, str] = {
    "gateway": "services.gateway.app",
    "tickets": "services.tickets.app",
}

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
            asyncio.run(wrapper())
    except ConfigurationError as exc:
        raise click.ClickException(f"refusing to start: {exc}") from None


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """OpsLedger: ops automation over an append-only event log."""
    settings = Settings()
    configure_logging(settings.log_level)
    ctx.obj = settings


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    settings: Settings = ctx.obj
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=clean) if clean else settings


@cli.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), help="where embedded servers keep data"
)
@click.option("--port", type=int, help="HTTP port of the gateway (default 8080)")
@click.option("--host", help="interface to listen on (default 127.0.0.1)")
@click.pass_context
def dev(ctx: click.Context, data_dir: Path | None, port: int | None, host: str | None) -> None:
    """Start embedded NATS and Postgres (unless URLs are set), every service and the gateway."""
    from libs.events.devstack import run_dev

    settings = _settings(ctx, data_dir=data_dir, port=port, host=host)
    _run(lambda stop: run_dev(settings, all_services(), stop))


@cli.command()
@click.argument("service")
@click.option("--port", type=int, help="HTTP port (gateway only)")
@click.option("--host", help="interface to listen on (gateway only)")
@click.option("--relay/--no-relay", default=True, help="stand for relay leader (one wins per DB)")
@click.option("--timers/--no-timers", default=True, help="fire due durable timers")
@click.pass_context
def run(
    ctx: click.Context,
    service: str,
    port: int | None,
    host: str | None,
    relay: bool,
    timers: bool,
) -> None:
    """Run one service (for Compose and scaling out); needs OPSLEDGER_DATABASE_URL and _NATS_URL."""
    from libs.events.devstack import run_services

    settings = _settings(ctx, port=port, host=host)
    if not settings.database_url or not settings.nats_url:
        raise click.UsageError("set OPSLEDGER_DATABASE_URL and OPSLEDGER_NATS_URL (or use `dev`)")
    chosen = load_service(service)
    _run(lambda stop: run_services(settings, [chosen], stop, relay=relay, timers=timers))


@cli.command()
@click.argument("service")
@click.pass_context
def replay(ctx: click.Context, service: str) -> None:
    """Rebuild SERVICE's projections from the event log."""
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

    asyncio.run(with_deps(settings, [chosen], main))


@cli.group()
def parked() -> None:
    """Events a consumer gave up on after its last attempt."""


@parked.command("list")
@click.option("--consumer", help="only this consumer")
@click.pass_context
def parked_list(ctx: click.Context, consumer: str | None) -> None:
    from libs.events.consumers import list_parked
    from libs.events.devstack import with_deps

    async def main(deps: Any) -> None:
        for p in await list_parked(deps.pool, consumer=consumer):
            click.echo(
                f"{p.event_id}  {p.consumer}  {p.type}  {p.stream_id}@{p.version}  "
                f"attempts={p.attempts}  {p.error}"
            )

    asyncio.run(with_deps(_settings(ctx), all_services(), main))


@parked.command("retry")
@click.argument("event_id", type=click.UUID)
@click.pass_context
def parked_retry(ctx: click.Context, event_id: UUID) -> None:
    from libs.events.consumers import retry_parked
    from libs.events.devstack import with_deps

    services = all_services()

    async def main(deps: Any) -> None:
        dispatchers = {}
        for service in services:
            dispatchers.update(service.dispatchers(deps))
        done = await retry_parked(deps.pool, dispatchers, event_id)
        click.echo(f"retried {done} parked handler(s) for {event_id}")

    asyncio.run(with_deps(_settings(ctx), services, main))


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply the store's and every service's migrations (also done at start)."""
    from libs.events.devstack import with_deps

    async def main(_: Any) -> None:
        click.echo("migrations applied")

    asyncio.run(with_deps(_settings(ctx), all_services(), main))


def main() -> None:
    cli(prog_name="opsledger")


if __name__ == "__main__":
    main()

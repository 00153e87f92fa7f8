"""Serving HTTP in this loop: the listening socket (a busy port is one clear line, exit code 2),
uvicorn without its own signal handling, banner or proxy-header trust, and /metrics on a listener
of its own when OPSLEDGER_METRICS_PORT is set."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from typing import IO, Any

import click
import prometheus_client
import uvicorn

from libs.events.settings import Settings


class CannotListen(click.ClickException):
    """The HTTP port cannot be had: one line on stderr, exit code 2 (a usage problem)."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.message, err=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _free_port_near(host: str, port: int) -> int | None:
    for candidate in range(port + 1, min(port + 100, 65535) + 1):
        with contextlib.suppress(OSError), _bind(host, candidate):
            return candidate
    return None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port for the HTTP server, or CannotListen saying why not."""
    try:
        return _bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            other = _free_port_near(host, port)
            hint = f"; try --port {other}" if other is not None else ""
            raise CannotListen(f"port {port} is in use{hint}") from None
        reason = exc.strerror or str(exc)
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: our loop owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:
        return None


def http_url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def serve_http(
    app: Any, *, host: str, port: int, sock: socket.socket | None = None
) -> tuple[QuietServer, asyncio.Task[None]]:
    """Start serving `app` in this loop on `sock` (else a socket bound to host:port here);
    returns once it listens (or raises why it could not)."""
    if sock is None:
        sock = listen(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="off",
        access_log=False,
        # uvicorn would believe X-Forwarded-* from 127.0.0.1, i.e. anyone on the host: the
        # gateway believes them only from OPSLEDGER_TRUSTED_PROXIES (services/gateway/forwarded.py)
        proxy_headers=False,
        server_header=False,  # no banner naming the server and so its version's known bugs
    )
    server = QuietServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    # uvicorn exposes no "started" event to wait on
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if serving.done():
        sock.close()
        serving.result()
        raise RuntimeError(f"the HTTP server did not start on {host}:{port}")
    return server, serving


async def serve_metrics(settings: Settings) -> tuple[QuietServer, asyncio.Task[None]] | None:
    """/metrics on its own listener when OPSLEDGER_METRICS_PORT is set (the gateway's app then
    has none), so it can be bound where only the scraper reaches; None when unset."""
    if settings.metrics_port is None:
        if settings.env == "production":
            click.echo("metrics: off (set OPSLEDGER_METRICS_PORT to serve /metrics)")
        return None
    sock = listen(settings.metrics_host, settings.metrics_port)
    running = await serve_http(
        prometheus_client.make_asgi_app(),
        host=settings.metrics_host,
        port=settings.metrics_port,
        sock=sock,
    )
    click.echo(f"metrics at {http_url(settings.metrics_host, sock)}metrics")
    return running

"""The embedded nats-server: a `nats-server -js` child process owned by the process that
started it; a server whose owner died is reaped, one whose owner lives is never touched."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Self

import httpx

if TYPE_CHECKING:
    pass
from libs.events.embedded_base import (
    LOCALHOST,
    NATS_START_TIMEOUT,
    PORT_ATTEMPTS,
    STOP_TIMEOUT,
    EmbeddedServerError,
    free_port,
    nats_server_binary,
    parent_pid,
    pid_alive,
    read_tail,
)

logger = logging.getLogger(__name__)


class EmbeddedNats:
    """A ``nats-server -js`` child process whose JetStream store lives in ``data_dir/nats``.

    The process that starts it is its owner (recorded in ``nats-server.owner``). A server left on
    the store dir by an owner that died is stopped by the next ``start()``; one whose owner is
    alive in another process is never touched: ``start()`` refuses instead.

    Use ``await start()`` / ``await stop()`` (call stop in ``finally``) or
    ``async with EmbeddedNats(path) as nats: ... nats.url``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        binary: Path | None = None,
        start_timeout: float = NATS_START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.store_dir = (self.data_dir / "nats").resolve()
        self.log_path = self.store_dir / "nats-server.log"
        self.pid_path = self.store_dir / "nats-server.pid"
        self.owner_path = self.store_dir / "nats-server.owner"
        self._binary = binary
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._url: str | None = None
        self._monitor_url: str | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT`` of the running server."""
        if self._url is None:
            raise EmbeddedServerError("EmbeddedNats is not running")
        return self._url

    @property
    def monitor_url(self) -> str:
        """``http://127.0.0.1:MONPORT`` (the HTTP monitoring endpoint) of the running server."""
        if self._monitor_url is None:
            raise EmbeddedServerError("EmbeddedNats is not running")
        return self._monitor_url

    @property
    def pid(self) -> int | None:
        """PID of the nats-server child, or None when not running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def is_running(self) -> bool:
        """True while the server this instance started is alive."""
        return self.pid is not None

    async def start(self) -> str:
        """Start nats-server (if not already running) and return its client URL."""
        if self._proc is not None and self._proc.poll() is None and self._url is not None:
            return self._url
        self._stop_sync()  # forget a child that died on its own
        binary = self._binary or nats_server_binary()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._reap_stale_server)
        began = time.monotonic()
        deadline = began + self._start_timeout
        last_error = ""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            monitor_port = free_port()
            while monitor_port == port:
                monitor_port = free_port()
            await asyncio.to_thread(self._spawn, binary, port, monitor_port)
            atexit.register(self._stop_sync)
            try:
                ready = await self._wait_healthy(monitor_port, deadline)
            except BaseException:
                self._stop_sync()
                raise
            if ready:
                self._url = f"nats://{LOCALHOST}:{port}"
                self._monitor_url = f"http://{LOCALHOST}:{monitor_port}"
                logger.info(
                    "embedded nats-server pid %s ready at %s (store %s) in %.2fs",
                    self.pid,
                    self._url,
                    self.store_dir,
                    time.monotonic() - began,
                )
                return self._url
            exited = self._proc is not None and self._proc.poll() is not None
            self._stop_sync()
            last_error = read_tail(self.log_path)
            if not exited or time.monotonic() >= deadline:
                break
            # Most likely lost the race for a port we picked: try fresh ones.
            logger.warning("nats-server exited during start (attempt %d), retrying", attempt)
        raise EmbeddedServerError(
            f"nats-server did not become healthy within {self._start_timeout:.0f}s; "
            f"log {self.log_path}:\n{last_error}"
        )

    async def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after a timeout). Idempotent."""
        # In a thread: if this await is cancelled (Ctrl-C), the stop still runs to the end.
        await asyncio.to_thread(self._stop_sync)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, binary: Path, port: int, monitor_port: int) -> None:
        args = [
            str(binary),
            "-js",
            "-sd",
            str(self.store_dir),
            "-p",
            str(port),
            "-m",
            str(monitor_port),
            "-a",
            LOCALHOST,
            "-P",
            str(self.pid_path),
        ]
        self._log_file = self.log_path.open("ab")
        # Before the server exists, so whoever finds its pid file also finds its owner.
        self.owner_path.write_text(f"{os.getpid()}\n")
        logger.info("starting %s", " ".join(args))
        # A new session keeps a terminal Ctrl-C away from the server: our stop() (run from the
        # caller's `finally`, or atexit) shuts it down after the app has drained its work.
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def _wait_healthy(self, monitor_port: int, deadline: float) -> bool:
        """True once /healthz answers 200; False if the process exits or time runs out."""
        url = f"http://{LOCALHOST}:{monitor_port}/healthz"
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return True
                await asyncio.sleep(0.05)
        return False

    def _stop_sync(self) -> None:
        """Blocking stop, also the atexit safety net: SIGTERM, wait, SIGKILL."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(self._stop_timeout)
                    except subprocess.TimeoutExpired:
                        logger.warning("nats-server pid %s ignored SIGTERM; killing it", proc.pid)
                        proc.kill()
                        proc.wait()
                logger.info("embedded nats-server pid %s stopped", proc.pid)
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            if proc is not None and self._recorded_owner() == os.getpid():
                self.owner_path.unlink(missing_ok=True)
            self._url = None
            self._monitor_url = None
            atexit.unregister(self._stop_sync)

    def _recorded_owner(self) -> int | None:
        try:
            return int(self.owner_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _live_owner(self, server_pid: int) -> int | None:
        """The other process that started ``server_pid``, if it is still alive; else None.

        The owner is alive exactly while it is still the server's parent: when it dies, the
        server is re-parented, so a later process reusing its pid is not mistaken for it. In
        this process a new instance replaces an earlier one (the server is ours to stop).
        """
        owner = self._recorded_owner()
        if owner is None or owner == os.getpid():
            return None
        return owner if parent_pid(server_pid) == owner and pid_alive(owner) else None

    def _reap_stale_server(self) -> None:
        """Stop a nats-server left running on this store dir by a process that died hard; refuse
        to start if its owner is still alive.

        Two servers on one store dir would corrupt it, and nats-server does not lock it.
        """
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if pid == os.getpid() or not pid_alive(pid):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return  # cannot tell what that process is (or not Linux): leave it alone
        args = [arg.decode(errors="replace") for arg in cmdline]
        if not args or not args[0].endswith("nats-server") or str(self.store_dir) not in args:
            return
        owner = self._live_owner(pid)
        if owner is not None:
            raise EmbeddedServerError(
                f"the nats-server on {self.store_dir} (pid {pid}) belongs to process {owner}, "
                "which is still running; use its server or stop it first"
            )
        logger.warning("stopping stale nats-server pid %s on %s", pid, self.store_dir)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)

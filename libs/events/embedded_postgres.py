"""The embedded PostgreSQL (the pgserver wheel): data under data_dir/postgres, Unix socket
only, stopped by stop() or at interpreter exit."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import quote

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer
from libs.events.embedded_base import (
    PG_START_TIMEOUT,
    EmbeddedServerError,
    pid_alive,
    read_tail,
)

logger = logging.getLogger(__name__)
_PATCH_LOCK = threading.Lock()
_socket_dir_patched = False


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
        return pid is not None and pid_alive(pid)

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
                        f"{self._start_timeout:.0f}s: {err!r}\n{read_tail(self.pgdata / 'log')}"
                    ) from err
                logger.warning("postgres not up yet (%r); retrying", err)
                time.sleep(1.0)
            except (subprocess.SubprocessError, OSError) as err:
                self._forget_failed_handle()
                raise EmbeddedServerError(
                    f"postgres in {self.pgdata} failed to start: {err!r}\n"
                    f"{read_tail(self.pgdata / 'log')}"
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
            if pid is not None and pid_alive(pid):
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
        return [p for p in pids if isinstance(p, int) and p != os.getpid() and pid_alive(p)]

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
            alive = [p for p in pids if isinstance(p, int) and pid_alive(p)]
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

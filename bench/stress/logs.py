"""The worker logs: their format, and the most frequent notable lines for the report."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from bench.stress.service import INJECTED

HIGHLIGHTS = 12
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"\d+")


def fold(text: str) -> str:
    """A log line with ids and numbers folded, so repeats of one message group together."""
    return _NUMBER.sub("N", _UUID.sub("<id>", text))[:200]


def log_keys(lines: Iterable[str]) -> Iterable[str]:
    """WARNING+ log lines and the final line of every traceback; injected failures as '*'."""
    in_traceback = False
    for line in lines:
        if any(name in line for name in INJECTED):
            yield "*"
            continue
        if line.startswith("Traceback"):
            in_traceback = True
            continue
        if in_traceback and line and not line[0].isspace():
            if line.startswith(("During handling", "The above exception")):
                continue
            in_traceback = False
            yield f"raised: {fold(line)}"
            continue
        match = _LOG_LINE.match(line)
        if match:
            level, logger, message = match.groups()
            yield f"{level} {logger}: {fold(message)}"


def log_highlights(paths: Iterable[Path]) -> tuple[list[tuple[str, int]], int]:
    """The most frequent notable worker log lines, and how many were injected failures."""
    counts: Counter[str] = Counter()
    for path in paths:
        with contextlib.suppress(OSError):
            counts.update(log_keys(path.read_text(errors="replace").splitlines()))
    injected = counts.pop("*", 0)
    return counts.most_common(HIGHLIGHTS), injected

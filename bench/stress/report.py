"""The markdown report: the results table, examples, worker log highlights and the verdict."""

from __future__ import annotations

import os
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.stress.findings import Findings, Outcome
from bench.stress.probes import Probe


@dataclass(frozen=True)
class Line:
    """One row of the results table; `ok` None when it is not a check."""

    name: str
    value: str
    ok: bool | None = None
    warn: bool = False
    """Worth a look, but not one of the guarantees the run checks."""


def counted(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counter.most_common()) or "none"


def maybe(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def outcome_lines(f: Findings) -> list[Line]:
    dup = f.duplicated
    poison = f.poison
    both = f.parked & f.handled_ids
    random_parked = f.parked_not_handled - poison
    return [
        Line("events written (committed, in eventstore.events)", f"{len(f.written):,}"),
        Line("handled (distinct event ids)", f"{len(f.handled_ids):,}"),
        Line(
            "parked (and not handled)",
            f"{len(f.parked_not_handled):,} ({len(poison & f.parked):,} poison, "
            f"{len(random_parked):,} after random failures)",
        ),
        Line("**lost** (written - handled - parked)", f"{len(f.lost):,}", not f.lost),
        Line(
            "**duplicated** (ids handled more than once)",
            f"{len(dup):,} ({sum(dup.values()) - len(dup):,} extra rows)",
            not dup,
        ),
        Line("**out of per-stream order**", f"{len(f.out_of_order):,}", not f.out_of_order),
        Line(
            "poison events parked (none handled)",
            f"{len(poison & f.parked):,} of {len(poison):,} "
            f"({len(poison & f.handled_ids):,} handled)",
            poison <= f.parked and not poison & f.handled_ids,
        ),
        Line(
            "handled and also parked (retrying one runs its handler twice)",
            f"{len(both):,}",
            warn=bool(both),
        ),
    ]


def writer_lines(f: Findings) -> list[Line]:
    ambiguous = f.wlog.ambiguous
    return [
        Line(
            "acknowledged appends missing from the log",
            f"{len(f.acknowledged_missing):,}",
            not f.acknowledged_missing,
        ),
        Line(
            "rolled back / uncommitted events found in the log",
            f"{len(f.uncommitted_stored):,}",
            not f.uncommitted_stored,
        ),
        Line("handled events never written", f"{len(f.unknown_handled):,}", not f.unknown_handled),
        Line(
            "ambiguous events (commit unanswered): committed / not",
            f"{len(ambiguous & f.written_ids):,} / {len(ambiguous - f.written_ids):,}",
        ),
        Line("appends by mode and outcome", counted(f.wlog.appends)),
        Line("writer errors (retried)", counted(f.wlog.errors)),
    ]


def chaos_lines(o: Outcome) -> list[Line]:
    fleet, servers, bus = o.fleet, o.servers, o.bus
    exits = Counter(str(code) for code in fleet.unexpected_exits)
    return [
        Line("worker kills (SIGKILL)", f"{fleet.kills:,}"),
        Line(
            "worker restarts",
            f"{fleet.restarts:,} ({len(fleet.unexpected_exits)} after exits nobody caused"
            + (f": exit codes {counted(exits)})" if exits else ")"),
        ),
        Line("Postgres restarts", str(servers.pg_restarts), servers.pg_restarts == 1),
        Line("NATS restarts", str(servers.nats_restarts), servers.nats_restarts == 1),
        *probe_lines(o.probes),
        Line("duration of writes", f"{o.seconds:.0f} s"),
        Line(
            "drain (every written event handled or parked)",
            f"{'done' if o.drained else 'GAVE UP'} after {o.drain_s:.0f} s",
        ),
        Line(
            "after the drain: relay leaders / events not yet published",
            f"{maybe(bus.relay_leaders)} / {maybe(bus.unpublished)}",
        ),
        Line(
            "after the drain: bus messages / consumer pending / ack pending / redelivered",
            f"{maybe(bus.stream_messages)} / {maybe(bus.consumer_pending)} / "
            f"{maybe(bus.consumer_ack_pending)} / {maybe(bus.consumer_redelivered)}",
        ),
    ]


def probe_lines(probes: Sequence[Probe]) -> list[Line]:
    return [
        Line(
            f"worker {p.replica} alone after the chaos ({p.starts} start"
            f"{'' if p.starts == 1 else 's'}): probe events handled or parked",
            f"{p.settled} of {p.appended} in {p.seconds:.1f} s",
            p.ok,
        )
        for p in probes
    ]


def table(lines: Sequence[Line]) -> str:
    rows = ["| metric | value | check |", "|---|---|---|"]
    for line in lines:
        check = "" if line.ok is None else ("ok" if line.ok else "**FAIL**")
        check = "**warn**" if line.warn else check
        rows.append(f"| {line.name} | {line.value} | {check} |")
    return "\n".join(rows)


def cell(text: str) -> str:
    """Text safe inside a markdown table cell's code span."""
    return text.replace("|", "/").replace("`", "'")


def highlights_section(o: Outcome) -> str:
    lines = [
        "## Worker logs",
        "",
        f"{o.injected:,} log lines about injected handler failures (expected); the most frequent "
        "other WARNING+ lines and raised exceptions (ids and numbers folded to <id> and N):",
        "",
        "| count | line |",
        "|---:|---|",
    ]
    lines += [f"| {n:,} | `{cell(text)}` |" for text, n in o.highlights]
    if not o.highlights:
        lines.append("| 0 | (none) |")
    return "\n".join(lines)


def render(o: Outcome, f: Findings, *, quick: bool, took: float, load: float) -> tuple[str, bool]:
    """The markdown report and whether every check passed."""
    lines = outcome_lines(f) + writer_lines(f) + chaos_lines(o)
    failed = [line.name.replace("*", "") for line in lines if line.ok is False]
    if o.chaos_error:
        failed.append(o.chaos_error)
    verdict = "**PASS**" if not failed else "**FAIL**: " + "; ".join(failed)
    header = (
        f"# Stress run ({'quick' if quick else 'full'})\n\n"
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {o.plan.label}; embedded Postgres and NATS "
        f"in a temp dir; Python {platform.python_version()}; took {took:.0f} s; "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at start."
        + ("" if o.ready else " The workers were not ready when the writers started.")
        + f"\n\nVerdict: {verdict}\n\n"
    )
    found = "".join(f"- {line}\n" for line in f.examples)
    found = f"## Examples\n\n{found}\n" if found else ""
    return header + table(lines) + "\n\n" + found + highlights_section(o) + "\n", not failed

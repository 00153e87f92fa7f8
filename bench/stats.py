"""Percentiles, table rows and the markdown table the benchmarks print."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (`pct` in 0..100); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass(frozen=True)
class Row:
    """One line of the results table: our number beside the raw baseline's."""

    name: str
    ours: float
    baseline: float
    unit: str
    aim: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else math.nan


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "ms":
        return f"{value:,.2f} ms"
    return f"{value:,.0f} {unit}"


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| benchmark | ours | raw baseline | ratio (ours / raw) | aim |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        verdict = "" if row.met is None else (" — met" if row.met else " — **missed**")
        lines.append(
            f"| {row.name} | {_fmt(row.ours, row.unit)} | {_fmt(row.baseline, row.unit)} "
            f"| {row.ratio:.2f} | {row.aim}{verdict} |"
        )
    return "\n".join(lines)

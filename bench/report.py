"""Result model, statistics and output shared by every bench: a readable table, or JSON with ``--json``.

Owns the shape of a bench's output. A :class:`BenchResult` holds figures in milliseconds, ratios against
the baseline measured in the same run, and goals (reported as met or not, never asserted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``samples``, nearest-rank method."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Summary:
    """Latency figures of one series, in milliseconds."""

    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = [s * 1000.0 for s in seconds]
        return cls(
            n=len(ms),
            p50_ms=statistics.median(ms),
            p99_ms=percentile(ms, 99),
            mean_ms=statistics.fmean(ms),
            min_ms=min(ms),
        )


@dataclass(frozen=True)
class Goal:
    """A target figure: ``value`` should be at most ``limit`` (same unit), or at least it with ``at_least``."""

    name: str
    value: float
    limit: float
    unit: str
    at_least: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    @property
    def ratio(self) -> float:
        """``value / limit``: at most 1.0 when an upper-bound goal is met, at least 1.0 for ``at_least``."""
        return self.value / self.limit if self.limit else math.inf

    @property
    def direction(self) -> str:
        return ">=" if self.at_least else "<="


@dataclass
class BenchResult:
    """Everything one bench prints."""

    bench: str
    title: str
    params: dict[str, Any]
    series: dict[str, Summary]
    ratios: dict[str, float]
    goals: list[Goal] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "title": self.title,
            "machine": machine(),
            "params": self.params,
            "series": {name: _rounded(asdict(s)) for name, s in self.series.items()},
            "ratios": {k: round(v, 4) for k, v in self.ratios.items()},
            "goals": [
                {
                    "name": g.name,
                    "value": round(g.value, 4),
                    "limit": g.limit,
                    "unit": g.unit,
                    "direction": g.direction,
                    "met": g.met,
                }
                for g in self.goals
            ],
            "details": self.details,
            "notes": self.notes,
        }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def machine() -> dict[str, Any]:
    """Where and when the figures were taken."""
    return {
        "date": dt.date.today().isoformat(),
        "nproc": os.cpu_count() or 0,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def format_table(result: BenchResult) -> str:
    """A plain-text table of ``result``."""
    m = machine()
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    lines = [
        f"== {result.bench}: {result.title}",
        f"   {m['date']}, nproc={m['nproc']}, python {m['python']}; {params}",
    ]
    width = max([len(n) for n in result.series] + [10])
    lines.append(f"   {'series':<{width}}  {'n':>5}  {'p50 ms':>9}  {'p99 ms':>9}  {'mean ms':>9}  {'min ms':>9}")
    for name, s in result.series.items():
        lines.append(
            f"   {name:<{width}}  {s.n:>5}  {s.p50_ms:>9.3f}  {s.p99_ms:>9.3f}  {s.mean_ms:>9.3f}  {s.min_ms:>9.3f}"
        )
    if result.ratios:
        lines.append("   ratios:")
        rw = max(len(k) for k in result.ratios)
        lines.extend(f"     {k:<{rw}}  {v:7.2f}x" for k, v in result.ratios.items())
    if result.goals:
        lines.append("   goals (reported, not asserted):")
        for g in result.goals:
            verdict = "met" if g.met else "NOT met"
            lines.append(
                f"     {g.name}: {g.value:.2f} {g.unit} vs {g.direction} {g.limit:g} {g.unit} "
                f"({g.ratio:.2f} of the goal) {verdict}"
            )
    for key, value in result.details.items():
        if isinstance(value, list):
            lines.append(f"   {key}:")
            lines.extend(f"     {item}" for item in value)
        elif isinstance(value, dict):
            lines.append(f"   {key}: " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            lines.append(f"   {key}: {value}")
    lines.extend(f"   note: {n}" for n in result.notes)
    return "\n".join(lines)


def emit(results: Sequence[BenchResult], as_json: bool) -> None:
    """Print ``results`` as tables, or as one JSON document (``{"machine": ..., "results": [...]}``)."""
    if as_json:
        doc = {"machine": machine(), "results": [r.to_json() for r in results]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write("\n\n".join(format_table(r) for r in results) + "\n")
    sys.stdout.flush()


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")

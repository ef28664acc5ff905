"""The SQLite outbox alone: its ceiling in log lines/s, and what each setting buys.

Owns the journal bench. No network. N ``build.log`` events (the size ``cs stream`` writes) go through
the journal's life cycle in chunks: append a chunk (one transaction), then forget it (range delete,
as the Publisher does after the acks). Variants, each on a fresh database in a temp dir:

- *outbox*: the real :class:`Outbox` (``append`` + ``remove``): WAL, ``synchronous=NORMAL``,
  ``wal_autocheckpoint=4000``, one ``executemany`` transaction per chunk (chunk 1024);
- *chunk 1 / 64 / 4096*: the same SQL with a different chunk size (chunk 1 = one transaction per line);
- *no statement cache*: ``cached_statements=0``, so every statement is prepared again (what the
  ``sqlite3`` module's prepared-statement cache buys);
- *synchronous=FULL* / *synchronous=OFF*: an fsync per commit, or none;
- *rollback journal*: ``journal_mode=DELETE`` instead of WAL;
- *autocheckpoint 1000*: SQLite's default checkpoint interval.

Reported as lines/s per variant and as a ratio to *outbox* (the baseline of the same run).

``python -m bench.journal [--n 100000] [--json]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.report import BenchResult, Summary, add_common_args, emit
from cloudstation.events import contract as c
from cloudstation.events.outbox import Outbox
from cloudstation.events.outboxfile import _SCHEMA

DEFAULT_N = 100_000
_INSERT = (
    "INSERT INTO events (owner, msg_id, kind, subject, deployment_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _events(n: int) -> list[c.Event]:
    out = []
    for i in range(n):
        payload = c.BuildLog(
            deployment_id="bench-journal",
            job_id=1,
            service_id="",
            owner_id="",
            log_output="stdout",
            content=f"line {i:07d} of the build output\n",
            timestamp=1_700_000_000_000 + i,
            sequence=i + 1,
            phase="build",
        )
        out.append(c.make_event(c.EventKind.BUILD_LOG, payload))
    return out


def _outbox(events: list[c.Event], chunk: int, tmp: Path) -> float:
    with Outbox(tmp) as ob:
        t0 = time.perf_counter()
        for i in range(0, len(events), chunk):
            ob.remove(ob.append(events[i : i + chunk]))
        return time.perf_counter() - t0


def _raw(
    events: list[c.Event],
    tmp: Path,
    *,
    chunk: int = 1024,
    cached: int = 128,
    synchronous: str = "NORMAL",
    journal: str = "WAL",
    checkpoint: int = 4000,
) -> float:
    db = sqlite3.connect(tmp / "raw.sqlite3", isolation_level=None, cached_statements=cached)
    db.execute(f"PRAGMA journal_mode={journal}")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(f"PRAGMA wal_autocheckpoint={checkpoint}")
    db.executescript(_SCHEMA)
    now = time.time()
    t0 = time.perf_counter()
    for i in range(0, len(events), chunk):
        rows = [("o", e.msg_id, e.kind.value, e.subject, e.deployment_id, e.data, now) for e in events[i : i + chunk]]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(_INSERT, rows)
        last = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (last - len(rows) + 1, last))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


def run(n: int = DEFAULT_N) -> BenchResult:
    events = _events(n)
    variants: dict[str, Callable[[Path], float]] = {
        "outbox (WAL, NORMAL, chunk 1024)": lambda d: _outbox(events, 1024, d),
        "same SQL, chunk 1024": lambda d: _raw(events, d),
        "chunk 1 (a transaction per line)": lambda d: _raw(events[: max(1, n // 20)], d, chunk=1),
        "chunk 64": lambda d: _raw(events, d, chunk=64),
        "chunk 4096": lambda d: _raw(events, d, chunk=4096),
        "no prepared-statement cache": lambda d: _raw(events, d, cached=0),
        "synchronous=FULL": lambda d: _raw(events, d, synchronous="FULL"),
        "synchronous=OFF": lambda d: _raw(events, d, synchronous="OFF"),
        "rollback journal (DELETE)": lambda d: _raw(events, d, journal="DELETE"),
        "wal_autocheckpoint=1000": lambda d: _raw(events, d, checkpoint=1000),
    }
    rates: dict[str, float] = {}
    series: dict[str, Summary] = {}
    for name, fn in variants.items():
        with tempfile.TemporaryDirectory(prefix="cs-bench-journal-") as tmp:
            elapsed = fn(Path(tmp))
        count = max(1, n // 20) if name.startswith("chunk 1 ") else n
        rates[name] = count / elapsed
        series[name] = Summary.of([elapsed / count])  # seconds per line
    base = rates["outbox (WAL, NORMAL, chunk 1024)"]
    return BenchResult(
        bench="journal",
        title="the SQLite outbox alone: append + range delete per chunk, lines/s by setting",
        params={"n": n},
        series=series,
        ratios={f"{name} / outbox": rate / base for name, rate in rates.items() if not name.startswith("outbox")},
        details={"lines/s": {name: round(rate) for name, rate in rates.items()}},
        notes=[
            "series figures are milliseconds per line (one run each); chunk 1 runs N/20 lines",
            "a line is appended in a transaction with its chunk, then deleted with it (range delete)",
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.journal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help=f"lines (default {DEFAULT_N})")
    add_common_args(parser)
    args = parser.parse_args(argv)
    emit([run(args.n)], args.json)


if __name__ == "__main__":
    main()

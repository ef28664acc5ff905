"""Smoke tests of ``bench/``: each bench runs in a tiny mode against a real nats-server it starts itself.

Owns only "the benches still run and print what they promise": the output's fields are checked, never a
timing (the machine is shared and noisy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.logstream import count_in_file
from bench.startup import parse_importtime

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def only_result(stdout: str, bench: str) -> dict[str, Any]:
    doc = json.loads(stdout)
    assert set(doc["machine"]) >= {"date", "nproc", "python"}
    [result] = doc["results"]
    assert result["bench"] == bench
    assert set(result) >= {"title", "machine", "params", "series", "ratios", "goals", "details", "notes"}
    for series in result["series"].values():
        assert set(series) == {"n", "p50_ms", "p99_ms", "mean_ms", "min_ms"}
        assert all(isinstance(v, int | float) and v >= 0 for v in series.values())
    for goal in result["goals"]:
        assert set(goal) == {"name", "value", "limit", "unit", "direction", "met"}
        assert goal["direction"] in ("<=", ">=")
        assert isinstance(goal["met"], bool)
    assert all(isinstance(v, float) and v > 0 for v in result["ratios"].values())
    out: dict[str, Any] = result
    return out


def test_delivery_bench_tiny() -> None:
    result = only_result(run_bench("bench.delivery", "--n", "5", "--warmup", "1", "--json").stdout, "delivery")
    assert result["params"]["n"] == 5
    assert set(result["series"]) == {
        "ours: submit -> PubAck (wait)",
        "ours: submit -> PubAck + flush",
        "ours: submit -> idle (row removed)",
        "plain: js.publish",
        "plain: js.publish + flush",
        "journal only (4 outbox steps)",
    }
    assert all(s["n"] == 5 for s in result["series"].values())
    assert "p50 ours/plain (with flush)" in result["ratios"]
    assert "p99 ours/plain (with flush)" in result["ratios"]
    assert [g["name"] for g in result["goals"]] == ["p50 ours/plain (with flush)"]
    assert set(result["details"]["journal_step_p50_us"]) == {
        "append",
        "next_batch (1 row)",
        "next_batch (empty)",
        "remove",
    }


def test_startup_bench_tiny() -> None:
    proc = run_bench("bench.startup", "--n", "2", "--warmup", "0", "--imports", "3", "--json")
    result = only_result(proc.stdout, "startup")
    assert set(result["series"]) == {"python -c pass", "cs --version", "cs events publish (to PubAck, exit)"}
    assert all(s["n"] == 2 for s in result["series"].values())
    assert set(result["ratios"]) == {
        "median cs --version / python -c pass",
        "median cs events publish / python -c pass",
        "median cs events publish / cs --version",
    }
    assert {g["name"]: g["unit"] for g in result["goals"]} == {
        "median cs events publish": "ms",
        "median cs --version": "ms",
    }
    for key in ("top imports, cs --version", "top imports, cs events publish"):
        assert 1 <= len(result["details"][key]) <= 3


def test_logstream_bench_tiny() -> None:
    proc = run_bench("bench.logstream", "--lines", "2000", "--down-timeout", "1", "--json")
    result = only_result(proc.stdout, "logstream")
    assert result["params"]["lines"] == 2000
    assert set(result["series"]) == {
        "cs stream, server up: spawn -> exit (all acked)",
        "cs stream, CS_FAST_INGEST=off: spawn -> exit",
        "publish_async: N publishes -> all acked",
        "child under cs stream (own run time)",
        "child to /dev/null (own run time)",
        "child piped to cat (own run time)",
        "cs stream, server down: spawn -> exit",
        "child under cs stream, server down",
        "cs events flush (outbox -> all acked)",
        "cs events pending --json",
    }
    assert set(result["ratios"]) == {
        "lines/s cs stream / publish_async",
        "lines/s cs stream pipelined (CS_FAST_INGEST=off) / publish_async",
        "lines/s cs stream fast-ingest / pipelined",
        "child time under cs / to /dev/null",
        "child time under cs / piped to cat",
        "child time piped to cat / to /dev/null",
        "cs wall / child to /dev/null",
        "child time under cs, server down / to /dev/null",
        "lines/s cs events flush / publish_async",
    }
    assert {g["name"]: (g["unit"], g["direction"]) for g in result["goals"]} == {
        "cs stream lines/s (end to end, acked)": ("lines/s", ">="),
        "lines/s vs publish_async": ("x", ">="),
        "child time under cs / to /dev/null": ("x", "<="),
        "peak RSS of cs stream, server down": ("MB", "<="),
    }
    details = result["details"]
    # Counts, not timings: every event reached the stream, or was kept and then flushed.
    assert details["stream holds (lines, ends)"] == {
        "cs stream": [2000, 1],
        "cs stream, pipelined": [2000, 1],
        "publish_async": [2000, 0],
        "after cs events flush": [2000, 1],
    }
    assert details["server down: outbox kept (by kind)"] == {"build.log": 2000, "build.log.end": 1}
    assert details["server down: outbox kept, all N+1"] is True
    assert details["server down: cs events pending --json rows"] == {"build.log": 2000, "build.log.end": 1}
    assert details["after flush: outbox left"] == 0
    assert details["server down: outbox files (bytes)"]["outbox.sqlite3"] > 0
    assert set(details["throughput (lines/s)"]) >= {"cs stream, N lines + end, acked", "publish_async, N lines, acked"}
    assert set(details["peak RSS (MB)"]) >= {"cs stream, server down", "cs events flush"}


def test_all_benches_print_tables() -> None:
    proc = run_bench(
        "bench",
        "--delivery-n",
        "3",
        "--delivery-warmup",
        "0",
        "--startup-n",
        "1",
        "--startup-warmup",
        "0",
        "--logstream-lines",
        "200",
        "--logstream-down-timeout",
        "0.5",
        "--journal-n",
        "300",
    )
    for heading in (
        "== delivery:",
        "== startup:",
        "== logstream:",
        "== journal:",
        "p50 ms",
        "p99 ms",
        "ratios:",
        "goals (reported, not asserted):",
        ">= 25000 lines/s",
    ):
        assert heading in proc.stdout


def test_count_in_file_counts_across_chunk_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_bytes(b'[{"kind":"build.log"},{"kind":"build.log"},{"kind":"build.log.end"}]')
    for chunk in (1, 3, 7, 1 << 20):
        assert count_in_file(path, b'"kind":"build.log"', chunk=chunk) == 2
        assert count_in_file(path, b'"kind":"build.log.end"', chunk=chunk) == 1


def test_parse_importtime_keeps_two_levels_with_parents() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     deep",
            "import time:       200 |        300 |   child",
            "import time:       500 |        800 | top",
            "import time:        50 |         50 | other",
        ]
    )
    costs = parse_importtime(stderr, top=10)
    assert [(c.module, c.parent) for c in costs] == [("top", ""), ("child", "top"), ("other", "")]
    assert costs[0].cumulative_ms == 0.8 and costs[1].self_ms == 0.2

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
        assert set(goal) == {"name", "value", "limit", "unit", "met"}
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


def test_all_benches_print_tables() -> None:
    proc = run_bench(
        "bench", "--delivery-n", "3", "--delivery-warmup", "0", "--startup-n", "1", "--startup-warmup", "0"
    )
    for heading in ("== delivery:", "== startup:", "p50 ms", "p99 ms", "ratios:", "goals (reported, not asserted):"):
        assert heading in proc.stdout


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

"""Smoke tests of the journal, fastpath and scale benches: they run in a tiny mode and print what they promise
(fields, counts, the PNG), never a timing."""

from __future__ import annotations

from pathlib import Path

from tests.bench.test_bench_smoke import only_result, run_bench


def test_journal_bench_tiny() -> None:
    result = only_result(run_bench("bench.journal", "--n", "400", "--json").stdout, "journal")
    assert result["params"] == {"n": 400}
    rates = result["details"]["lines/s"]
    assert "outbox (WAL, NORMAL, chunk 1024)" in rates and len(rates) == 10
    assert all(v > 0 for v in rates.values())
    assert set(result["ratios"]) == {f"{name} / outbox" for name in rates if not name.startswith("outbox")}


def test_scale_bench_tiny_writes_its_figure(tmp_path: Path) -> None:
    png = tmp_path / "scale.png"
    proc = run_bench("bench.scale", "--ks", "1,2", "--lines", "300", "--plot", str(png), "--json")
    result = only_result(proc.stdout, "scale")
    points = result["details"]["points"]
    assert [(p["mode"], p["k"]) for p in points] == [("fast", 1), ("pipelined", 1), ("fast", 2), ("pipelined", 2)]
    assert [p["stored"] for p in points] == [301, 301, 602, 602]  # counts: every line and end acknowledged
    assert all(p["lines_per_s"] > 0 and p["server_cpu_cores"] >= 0 for p in points)
    assert set(result["ratios"]) == {
        "fast: aggregate lines/s K=2 / K=1",
        "pipelined: aggregate lines/s K=2 / K=1",
        "K=1: lines/s fast / pipelined",
        "K=2: lines/s fast / pipelined",
    }
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scale_bench_on_a_three_node_cluster_tiny(tmp_path: Path) -> None:
    png = tmp_path / "scale-cluster.png"
    proc = run_bench("bench.scale", "--ks", "1", "--lines", "200", "--nodes", "1,3", "--plot", str(png), "--json")
    result = only_result(proc.stdout, "scale")
    assert result["params"]["nodes"] == [1, 3]
    points = result["details"]["points"]
    # the bench checks each stream's replicas (R1, R3) and its count: every line and end acknowledged
    assert [(p["mode"], p["nodes"], p["stored"]) for p in points] == [
        ("fast", 1, 201),
        ("pipelined", 1, 201),
        ("fast", 3, 201),
        ("pipelined", 3, 201),
    ]
    assert all(p["finished"] and p["server_cpu_cores"] >= 0 for p in points)
    assert set(result["ratios"]) == {
        "K=1: lines/s fast / pipelined",
        "K=1 R3: lines/s fast / pipelined",
        "fast K=1: lines/s R3 / one server",
        "pipelined K=1: lines/s R3 / one server",
    }
    assert {s.split(" K=")[0] for s in result["series"]} == {"fast", "pipelined", "fast R3", "pipelined R3"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fastpath_bench_tiny() -> None:
    result = only_result(run_bench("bench.fastpath", "--lines", "300", "--rounds", "2", "--json").stdout, "fastpath")
    assert result["params"] == {"lines": 300, "rounds": 2}
    assert all(s["n"] == 2 for s in result["series"].values())
    assert set(result["details"]["median lines/s"]) == {"fast", "pipelined", "publish_async"}
    assert [g["name"] for g in result["goals"]] == ["cs stream (fast) vs publish_async"]

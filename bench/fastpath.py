"""``cs stream`` with fast-ingest batches vs pipelined publishes vs nats-py ``publish_async``, interleaved.

Owns the fast-path A/B. One server (stream made by ``cs nats setup``, so ``allow_batched`` is on); R
rounds, each running in turn (the order rotating every round, so drifting machine load hits all three
alike): ``cs stream`` of N lines (as in ``bench/logstream.py``: spawn -> exit, every line acknowledged),
the same with ``CS_FAST_INGEST=off``, and ``publish_async`` of N same-shaped events. Reported: median
lines/s of each and the ratios of the medians. Every run's stream count is checked (N + 1, or N).

Goal (reported, not asserted): ``cs stream`` (fast) >= 2x ``publish_async``.

``python -m bench.fastpath [--lines 100000] [--rounds 3] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from bench.logstream import CHILD_CODE, _publish_async, spawn, stream_counts
from bench.report import BenchResult, Goal, Summary, add_common_args, emit
from bench.server import BenchServer
from bench.startup import clean_env, default_cs, interpreter_of

DEFAULT_LINES = 100_000
DEFAULT_ROUNDS = 3
GOAL_VS_PUBLISH_ASYNC = 2.0
_BASELINE_DEPLOYMENT = "bench-logs-pa"  # what bench.logstream's baseline publishes to


def run(lines: int = DEFAULT_LINES, rounds: int = DEFAULT_ROUNDS, cs: Path | None = None) -> BenchResult:
    cs_path = cs or default_cs()
    python = interpreter_of(cs_path)
    timeout = 120.0 + lines / 500.0
    times: dict[str, list[float]] = {"fast": [], "pipelined": [], "publish_async": []}
    with tempfile.TemporaryDirectory(prefix="cs-bench-fastpath-") as tmp_name, BenchServer() as server:
        tmp = Path(tmp_name)
        env = clean_env({"NATS_SERVERS": server.url, "CS_STATE_DIR": str(tmp / "state")})
        spawn([str(cs_path), "nats", "setup"], env, tmp, "setup", 60).check()
        order = ["fast", "pipelined", "publish_async"]
        for r in range(rounds):
            for what in order[r % 3 :] + order[: r % 3]:
                if what == "publish_async":
                    seconds, errors, _ = asyncio.run(_publish_async(server.url, lines))
                    if errors:
                        raise RuntimeError(f"publish_async: {errors} publish(es) failed")
                    times[what].append(seconds)
                    continue
                dep = f"bench-{what[:2]}-{r:04d}"  # as long as the baseline's deployment id
                argv = [str(cs_path), "stream", "--deployment-id", dep, "--job-id", "1", "--end", "--quiet", "--"]
                argv += [python, "-c", CHILD_CODE, str(lines), str(tmp / f"{dep}.child-time")]
                mode_env = {**env, "CS_FAST_INGEST": "auto" if what == "fast" else "off"}
                times[what].append(spawn(argv, mode_env, tmp, dep, timeout).check().wall_s)
                if stream_counts(server.url, dep) != (lines, 1):
                    raise RuntimeError(f"{dep}: the stream does not hold {lines} lines and 1 end")
        if stream_counts(server.url, _BASELINE_DEPLOYMENT)[0] != lines * rounds:
            raise RuntimeError("publish_async: the stream does not hold every baseline event")
    rate = {k: (lines + (k != "publish_async")) / statistics.median(v) for k, v in times.items()}
    return BenchResult(
        bench="fastpath",
        title="cs stream: fast-ingest batches vs pipelined vs publish_async, interleaved rounds",
        params={"lines": lines, "rounds": rounds},
        series={
            "cs stream (fast-ingest batches): spawn -> exit": Summary.of(times["fast"]),
            "cs stream (CS_FAST_INGEST=off): spawn -> exit": Summary.of(times["pipelined"]),
            "publish_async: N publishes -> all acked": Summary.of(times["publish_async"]),
        },
        ratios={
            "lines/s cs stream fast / publish_async": rate["fast"] / rate["publish_async"],
            "lines/s cs stream pipelined / publish_async": rate["pipelined"] / rate["publish_async"],
            "lines/s cs stream fast / pipelined": rate["fast"] / rate["pipelined"],
        },
        goals=[
            Goal(
                "cs stream (fast) vs publish_async",
                rate["fast"] / rate["publish_async"],
                GOAL_VS_PUBLISH_ASYNC,
                "x",
                at_least=True,
            )
        ],
        details={"median lines/s": {k: round(v) for k, v in rate.items()}},
        notes=["medians over the rounds; the order of the three rotates every round"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fastpath", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES, help=f"lines per run ({DEFAULT_LINES})")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"rounds ({DEFAULT_ROUNDS})")
    parser.add_argument("--cs", type=Path, default=None, help="the cs script (default: next to this interpreter)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.lines < 1 or args.rounds < 1:
        parser.error("--lines and --rounds must be >= 1")
    emit([run(args.lines, args.rounds, args.cs)], args.json)


if __name__ == "__main__":
    main()

"""How cost grows with concurrent deployments: K ``cs stream`` processes sharing one ``nats-server``.

Owns the scale bench. For each K (default 1, 8, 32, 64) and each mode (fast-ingest batches, and
pipelined with ``CS_FAST_INGEST=off``), on a fresh server whose stream was made by ``cs nats setup``:

- K ``cs stream --deployment-id scale-<i> --end --quiet -- python -c <child> N`` start together, each
  with its own state dir (as each Nomad allocation has), each child printing N lines;
- *aggregate acknowledged lines/s*: the log events the stream holds, K·(N + 1), over first spawn → last
  exit; ``cs`` exits once all its events are acknowledged, then the stream is checked to hold exactly
  that and the outboxes to be empty. A point still running after ``--point-timeout`` (300 s) is stopped
  (SIGKILL) and reported as a collapse: what the stream held by then, and what the outboxes kept;
- *lifecycle latency under load*: meanwhile a Publisher in this process submits one barrier event
  (``deployment.status.changed``) every 50 ms and times submit → PubAck (``wait`` returns); p50 / p99,
  and the same probe on the idle server first (the baseline of the same run);
- *outbox growth*: the peak of the summed undelivered rows over the K outboxes (sampled every 0.5 s);
- *server CPU*: the server's user + system CPU seconds over the load (``/proc/<pid>/stat``), per
  second of wall time (1.0 = one core busy).

Goal (reported, never asserted): aggregate lines/s at K = 32 at least 0.8x the K = 1 figure, per mode.
``--plot PATH`` writes a PNG (lines/s and lifecycle p99 against K, one line per mode; matplotlib).

``python -m bench.scale [--ks 1,8,32,64] [--lines 5000] [--modes fast,pipelined] [--publish-timeout 5s]
[--plot P] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import BenchResult, Goal, Summary, add_common_args, emit, percentile
from bench.server import BenchServer
from bench.startup import clean_env, default_cs, interpreter_of
from cloudstation.events import contract as c
from cloudstation.events.outbox import OUTBOX_FILENAME, Outbox
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import settings_from_env

DEFAULT_KS = (1, 8, 32, 64)
DEFAULT_LINES = 5000
MODES = ("fast", "pipelined")
GOAL_K32_VS_K1 = 0.8
_PROBE_EVERY = 0.05
_IDLE_PROBES = 40
_PROBE_TIMEOUT = 30.0

CHILD_CODE = """\
import sys
w = sys.stdout.write
for i in range(int(sys.argv[1])):
    w(f"line {i:07d} of the build output\\n")
"""


@dataclass(frozen=True)
class Point:
    """One K in one mode."""

    mode: str
    k: int
    lines: int
    wall_s: float
    stored: int
    probe_idle: list[float]
    probe_load: list[float]
    outbox_peak: int
    server_cpu_s: float
    reconnects: int  # cs processes that lost their connection (and reconnected) during the run
    unfinished: int | None  # events still in the outboxes when the point was stopped at its timeout

    @property
    def acked_rate(self) -> float:
        """Acknowledged lines/s: what the stream holds (log lines and ends) over the wall time."""
        return self.stored / self.wall_s


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _outbox_rows(dirs: list[Path]) -> int:
    total = 0
    for d in dirs:
        path = d / OUTBOX_FILENAME
        if not path.exists():
            continue
        with contextlib.suppress(sqlite3.Error), sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            total += int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    return total


async def _probe(pub: Publisher) -> float:
    ev = c.make_event(
        c.EventKind.STATUS_CHANGED, c.StatusChanged(job_id=1, status="IN_PROGRESS"), deployment_id="probe"
    )
    t0 = time.perf_counter()
    seqs = pub.submit([ev], track=True)
    await pub.wait(seqs, timeout=_PROBE_TIMEOUT)  # not acknowledged by then: recorded as the timeout
    return time.perf_counter() - t0


async def _stored(url: str) -> int:
    import nats

    nc = await nats.connect(url, name="bench-scale-count")
    try:
        info = await nc.jetstream().stream_info("CLOUDSTATION", subjects_filter="build.log.>")
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


async def _point(
    cs: Path, mode: str, k: int, lines: int, tmp: Path, point_timeout: float, publish_timeout: str = "5s"
) -> Point:
    python = interpreter_of(cs)
    with BenchServer(tmp / f"server-{mode}-{k}") as server:
        assert server.proc is not None
        # cs waits (up to CS_DELIVERY_TIMEOUT) for every acknowledgement before it exits; on a loaded
        # machine the 60 s default can pass with rows still kept in the outbox (cs then exits 0 with a
        # warning), so the bench allows much longer and checks the outboxes are empty at the end.
        base = clean_env(
            {
                "NATS_SERVERS": server.url,
                "CS_FAST_INGEST": "auto" if mode == "fast" else "off",
                "CS_DELIVERY_TIMEOUT": "1800s",
                "NATS_PUBLISH_TIMEOUT": publish_timeout,
            }
        )
        setup = await asyncio.create_subprocess_exec(
            str(cs), "nats", "setup", env={**base, "CS_STATE_DIR": str(tmp / "setup")},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if await setup.wait() != 0:
            raise RuntimeError("cs nats setup failed")
        settings = settings_from_env(base)
        assert settings is not None
        dirs = [tmp / f"state-{mode}-{k}-{i}" for i in range(k)]
        with Outbox(tmp / f"probe-{mode}-{k}") as outbox:
            pub = Publisher(settings, outbox)
            await pub.start()
            idle = [await _probe(pub) for _ in range(_IDLE_PROBES)]
            cpu0 = _server_cpu(server.proc.pid)
            t0 = time.perf_counter()
            procs = []
            for i, d in enumerate(dirs):
                argv = [str(cs), "stream", "--deployment-id", f"scale-{i:03d}", "--job-id", "1", "--end", "--quiet"]
                procs.append(
                    await asyncio.create_subprocess_exec(
                        *argv, "--", python, "-c", CHILD_CODE, str(lines),
                        env={**base, "CS_STATE_DIR": str(d)},
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    )
                )  # fmt: skip
            done = asyncio.ensure_future(asyncio.gather(*(p.communicate() for p in procs)))
            load: list[float] = []
            peak, sampled = 0, 0.0
            deadline = t0 + point_timeout
            while not done.done() and time.perf_counter() < deadline:
                load.append(await _probe(pub))
                if time.perf_counter() - sampled > 0.5:
                    peak = max(peak, await asyncio.to_thread(_outbox_rows, dirs))
                    sampled = time.perf_counter()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), _PROBE_EVERY)
            finished = done.done()
            if not finished:  # a collapse: stop the processes, count what the stream got by then
                for proc in procs:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            outputs = await done
            wall = time.perf_counter() - t0
            cpu = _server_cpu(server.proc.pid) - cpu0
            await pub.close()
        reconnects = sum(b"WARNING: disconnected" in err for _, err in outputs)
        for proc, (_, err) in zip(procs, outputs, strict=True):
            if finished and proc.returncode != 0:
                raise RuntimeError(f"cs stream exited with {proc.returncode}: {err.decode(errors='replace')[-500:]}")
        stored = await _stored(server.url)
        left = _outbox_rows(dirs)
        if not finished:
            return Point(mode, k, lines, wall, stored, idle, load or [idle[-1]], peak, cpu, reconnects, left)
        if left:
            raise RuntimeError(f"K={k} {mode}: {left} event(s) left in the outboxes after every cs exited")
        if stored != k * (lines + 1):
            raise RuntimeError(f"K={k} {mode}: the stream holds {stored} log events, expected {k * (lines + 1)}")
    return Point(mode, k, lines, wall, stored, idle, load or [idle[-1]], peak, cpu, reconnects, None)


def _plot(points: list[Point], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in sorted({p.mode for p in points}):
        pts = sorted((p for p in points if p.mode == mode), key=lambda p: p.k)
        ks = [p.k for p in pts]
        left.plot(ks, [p.acked_rate for p in pts], marker="o", label=mode)
        (line,) = right.plot(ks, [percentile(p.probe_load, 99) * 1000 for p in pts], marker="o", label=f"{mode}: load")
        idle = [percentile(p.probe_idle, 99) * 1000 for p in pts]
        right.plot(ks, idle, linestyle=":", color=line.get_color(), label=f"{mode}: idle server")
    left.set(xscale="log", xlabel="concurrent cs stream processes (K)", ylabel="acknowledged lines/s (all K)")
    left.set_xticks(sorted({p.k for p in points}), labels=[str(k) for k in sorted({p.k for p in points})])
    left.set_ylim(bottom=0)
    right.set(xscale="log", yscale="log", xlabel="K", ylabel="lifecycle event p99 (ms), submit -> PubAck")
    right.set_xticks(sorted({p.k for p in points}), labels=[str(k) for k in sorted({p.k for p in points})])
    for ax in (left, right):
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(True, alpha=0.3)
        ax.legend()
    n = points[0].lines if points else 0
    fig.suptitle(f"K cs stream processes x {n} lines, one nats-server (nproc={os.cpu_count()})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(
    ks: tuple[int, ...] = DEFAULT_KS,
    lines: int = DEFAULT_LINES,
    modes: tuple[str, ...] = MODES,
    plot: Path | None = None,
    cs: Path | None = None,
    point_timeout: float = 300.0,
    publish_timeout: str = "5s",
) -> BenchResult:
    cs_path = cs or default_cs()
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="cs-bench-scale-") as tmp:
        for k in ks:
            for mode in modes:
                points.append(asyncio.run(_point(cs_path, mode, k, lines, Path(tmp), point_timeout, publish_timeout)))
    if plot is not None:
        _plot(points, plot)
    series: dict[str, Summary] = {}
    ratios: dict[str, float] = {}
    goals: list[Goal] = []
    table: list[str] = []
    for p in points:
        series[f"{p.mode} K={p.k}: lifecycle under load"] = Summary.of(p.probe_load)
        series[f"{p.mode} K={p.k}: lifecycle idle (same server)"] = Summary.of(p.probe_idle)
        p50, p99 = statistics.median(p.probe_load) * 1000, percentile(p.probe_load, 99) * 1000
        table.append(
            f"{p.mode:9} K={p.k:<3} {p.acked_rate:9.0f} lines/s  lifecycle p50/p99 {p50:7.2f} / {p99:8.2f} ms"
            f" (idle p99 {percentile(p.probe_idle, 99) * 1000:.2f})"
            f"  outbox peak {p.outbox_peak:7d}  server CPU {p.server_cpu_s / p.wall_s:.2f} cores"
            f"  wall {p.wall_s:.1f}s  reconnected {p.reconnects}/{p.k}"
            + ("" if p.unfinished is None else f"  STOPPED at the timeout: {p.stored} stored, {p.unfinished} kept")
        )
    for mode in modes:
        by_k = {p.k: p for p in points if p.mode == mode}
        if 1 in by_k:
            for k, p in sorted(by_k.items()):
                if k != 1:
                    ratios[f"{mode}: aggregate lines/s K={k} / K=1"] = p.acked_rate / by_k[1].acked_rate
            if 32 in by_k:
                goals.append(
                    Goal(
                        f"{mode}: lines/s K=32 / K=1",
                        by_k[32].acked_rate / by_k[1].acked_rate,
                        GOAL_K32_VS_K1,
                        "x",
                        at_least=True,
                    )
                )
    fast = {p.k: p for p in points if p.mode == "fast"}
    for p in points:
        if p.mode == "pipelined" and p.k in fast:
            ratios[f"K={p.k}: lines/s fast / pipelined"] = fast[p.k].acked_rate / p.acked_rate
    return BenchResult(
        bench="scale",
        title="K concurrent cs stream processes on one server: lines/s, lifecycle latency, outbox, server CPU",
        params={"ks": list(ks), "lines_per_process": lines, "modes": list(modes), "plot": str(plot or "")},
        series=series,
        ratios=ratios,
        goals=goals,
        details={
            "per K": table,
            "points": [
                {
                    "mode": p.mode,
                    "k": p.k,
                    "lines_per_s": round(p.acked_rate),
                    "wall_s": round(p.wall_s, 2),
                    "stored": p.stored,
                    "lifecycle_p50_ms": round(statistics.median(p.probe_load) * 1000, 3),
                    "lifecycle_p99_ms": round(percentile(p.probe_load, 99) * 1000, 3),
                    "lifecycle_idle_p99_ms": round(percentile(p.probe_idle, 99) * 1000, 3),
                    "outbox_peak_rows": p.outbox_peak,
                    "server_cpu_cores": round(p.server_cpu_s / p.wall_s, 3),
                    "reconnected_processes": p.reconnects,
                    "finished": p.unfinished is None,
                    "kept_at_timeout": p.unfinished or 0,
                }
                for p in points
            ],
        },
        notes=[
            "one run per point; wall = first spawn -> last exit, incl. K cs start-ups (~0.15 s CPU each)",
            f"a lifecycle probe not acknowledged within {_PROBE_TIMEOUT:g} s counts as {_PROBE_TIMEOUT:g} s",
            "the stream is checked to hold exactly K*(N+1) log events per point",
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default=",".join(map(str, DEFAULT_KS)), help="comma-separated K values")
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES, help=f"lines per process ({DEFAULT_LINES})")
    parser.add_argument("--modes", default=",".join(MODES), help="fast,pipelined (default both)")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG figure here")
    parser.add_argument("--point-timeout", type=float, default=300.0, help="stop a point after this many s")
    parser.add_argument(
        "--publish-timeout", default="5s", help="NATS_PUBLISH_TIMEOUT of every cs (5s; shorter: a slower machine)"
    )
    parser.add_argument("--cs", type=Path, default=None, help="the cs script (default: next to this interpreter)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    ks = tuple(int(k) for k in args.ks.split(","))
    modes = tuple(m for m in args.modes.split(",") if m)
    if not ks or min(ks) < 1 or args.lines < 1 or not set(modes) <= set(MODES) or not modes:
        parser.error("--ks must be positive integers, --lines >= 1, --modes a subset of fast,pipelined")
    emit([run(ks, args.lines, modes, args.plot, args.cs, args.point_timeout, args.publish_timeout)], args.json)


if __name__ == "__main__":
    main()

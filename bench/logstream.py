"""``build.log`` throughput of ``cs stream`` end to end, versus nats-py's ``publish_async``, in one run.

Owns the log-stream bench. A child program prints N short lines (default 1,000,000) and records its own
run time in a file. Against a real ``nats-server`` (stream created with ``cs nats setup``):

1. *Throughput*: ``cs stream --deployment-id D --job-id 1 --end --quiet -- python -c <child> N`` runs as a
   subprocess, timed from spawn to exit. ``cs`` exits only after every event (N lines, then the
   ``build.log.end`` barrier) is acknowledged, so this covers read → redact → encode → SQLite journal →
   publish → PubAck → row removed. The stream is then asked (stream info, ``subjects_filter``) how many
   messages it holds on ``build.log.D`` and ``build.log.end.D``: N and 1. The baseline, on the same
   server: nats-py's ``js.publish_async`` of N payloads of the same size and shape (same headers,
   ``Nats-Msg-Id`` included) on its own connection, then ``publish_async_completed()``. ``cs nats setup``
   turns ``allow_batched`` on, so this ``cs stream`` sends fast-ingest batches; a second run with
   ``CS_FAST_INGEST=off`` (same server, same run) measures the pipelined path.
2. *Build slow-down*: the child's own run time (first line printed → last line flushed) under ``cs
   stream`` (the run above) versus with its stdout on ``/dev/null``, and piped to ``cat > /dev/null``
   (the floor for any pipe reader; medians of three runs each).
3. *Server down*: the same ``cs stream`` with ``NATS_SERVERS`` on the port of a stopped server and
   ``CS_DELIVERY_TIMEOUT`` short: the peak RSS of ``cs`` (``wait4``), the outbox's size on disk, the
   events kept in it (a direct SQLite count, and ``cs events pending --json``); then a server is started
   on that port and ``cs events flush`` is timed delivering them all.

Nothing is asserted: goals (≥ 25,000 lines/s, ≥ 2x ``publish_async``, child slow-down ≤ 1.10x, peak
RSS ≤ 80 MB) are reported as met or not.

``python -m bench.logstream [--lines 1000000] [--down-timeout 5] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import BenchResult, Goal, Summary, add_common_args, emit
from bench.server import BenchServer
from bench.startup import clean_env, default_cs, interpreter_of
from cloudstation.events import contract as c
from cloudstation.events.jetstream import default_stream_name
from cloudstation.events.outbox import OUTBOX_FILENAME

DEFAULT_LINES = 1_000_000
DEFAULT_DOWN_TIMEOUT = 5.0
GOAL_LINES_PER_S = 25_000.0
GOAL_VS_PUBLISH_ASYNC = 2.0
GOAL_CHILD_RATIO = 1.10
GOAL_PEAK_RSS_MB = 80.0

_JOB_ID = 1
_PHASE = "build"
# Same length, so that the baseline's payloads and headers are the size of cs's.
_DEPLOY_UP = "bench-logs-up"
_DEPLOY_BASELINE = "bench-logs-pa"
_DEPLOY_PIPELINED = "bench-logs-pl"
_DEPLOY_DOWN = "bench-logs-dn"
_DEVNULL_RUNS = 3

# The build: prints N short lines, then writes its own run time (seconds) to a file.
CHILD_CODE = """\
import sys, time
n, path = int(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
w = sys.stdout.write
for i in range(n):
    w(f"line {i:07d} of the build output\\n")
sys.stdout.flush()
t1 = time.perf_counter()
with open(path, "w") as fh:
    fh.write(repr(t1 - t0))
"""


def line_content(i: int) -> str:
    """Line ``i`` as the child prints it (the baseline sends the same text)."""
    return f"line {i:07d} of the build output\n"


@dataclass(frozen=True)
class ProcRun:
    """One subprocess, spawn to exit: wall time, exit code, peak RSS (wait4), output."""

    argv: tuple[str, ...]
    wall_s: float
    returncode: int
    maxrss_kb: int
    stdout_path: Path
    stderr: str

    def check(self) -> ProcRun:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv[:4])} ... exited with {self.returncode}: {self.stderr[-800:]}")
        return self


def spawn(argv: Sequence[str], env: Mapping[str, str], workdir: Path, label: str, timeout: float) -> ProcRun:
    """Run ``argv`` to completion with stdout/stderr in files; reap it with ``wait4`` for its peak RSS.

    The RSS is the larger of the process's own and that of any child it waited for (the printing child
    is a few MB, so for ``cs stream`` this is ``cs``). The process is killed after ``timeout`` seconds.
    """
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        timer = threading.Timer(timeout, _kill, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcRun(
        argv=tuple(argv),
        wall_s=wall,
        returncode=proc.returncode,
        maxrss_kb=int(usage.ru_maxrss),
        stdout_path=out_path,
        stderr=err_path.read_text(errors="replace"),
    )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def piped_to_cat(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> None:
    """Run ``argv`` with its stdout piped to ``cat > /dev/null``: the cost of a pipe with a free reader."""
    with subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as child:
        assert child.stdout is not None
        with subprocess.Popen(["cat"], stdin=child.stdout, stdout=subprocess.DEVNULL) as cat:
            child.stdout.close()  # cat holds the read end now
            cat.wait(timeout)
        if child.wait(timeout) != 0:
            raise RuntimeError(f"the child piped to cat exited with {child.returncode}")


def _child_time(path: Path) -> float:
    return float(path.read_text())


def count_in_file(path: Path, needle: bytes, chunk: int = 1 << 20) -> int:
    """Occurrences of ``needle`` in ``path``, read in chunks (the file may be hundreds of MB)."""
    total, carry = 0, b""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            data = carry + block
            total += data.count(needle)
            # Keep a tail shorter than the needle: a match across the boundary is counted once.
            carry = data[-(len(needle) - 1) :] if len(needle) > 1 else b""
    return total


def outbox_counts(state_dir: Path) -> dict[str, int]:
    """Events kept in the outbox, by kind (read-only, direct SQLite count)."""
    uri = f"file:{state_dir / OUTBOX_FILENAME}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall()
    return {str(kind): int(n) for kind, n in rows}


def outbox_bytes(state_dir: Path) -> dict[str, int]:
    """Size on disk of the outbox's files (database, WAL, shared memory) that exist."""
    sizes: dict[str, int] = {}
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / f"{OUTBOX_FILENAME}{suffix}"
        if path.exists():
            sizes[path.name] = path.stat().st_size
    return sizes


async def _stream_counts(url: str, subjects: Sequence[str]) -> dict[str, int]:
    import nats

    nc = await nats.connect(url, name="bench-logstream-count")
    try:
        js = nc.jetstream()
        counts: dict[str, int] = {}
        for subject in subjects:
            info = await js.stream_info(default_stream_name(""), subjects_filter=subject)
            counts[subject] = int((info.state.subjects or {}).get(subject, 0))
        return counts
    finally:
        await nc.close()


def stream_counts(url: str, deployment_id: str) -> tuple[int, int]:
    """Messages the stream holds on ``build.log.D`` and ``build.log.end.D``."""
    log_subject = c.subject_for(c.EventKind.BUILD_LOG, deployment_id=deployment_id)
    end_subject = c.subject_for(c.EventKind.BUILD_LOG_END, deployment_id=deployment_id)
    counts = asyncio.run(_stream_counts(url, [log_subject, end_subject]))
    return counts[log_subject], counts[end_subject]


def _baseline_event(i: int) -> c.Event:
    """Line ``i`` as ``cs`` would encode it, for the baseline's deployment (same sizes as cs's)."""
    payload = c.BuildLog(
        deployment_id=_DEPLOY_BASELINE,
        job_id=_JOB_ID,
        service_id="",
        owner_id="",
        log_output="stdout",
        content=line_content(i),
        timestamp=time.time_ns() // 1_000_000,
        sequence=i + 1,
        phase=_PHASE,
    )
    subject = c.subject_for(c.EventKind.BUILD_LOG, deployment_id=_DEPLOY_BASELINE)
    return c.Event(c.EventKind.BUILD_LOG, subject, c.encode_payload(payload), c.new_msg_id(), _DEPLOY_BASELINE)


def _prepare_only(n: int) -> float:
    """Lines/s at building the baseline's payloads and headers without publishing them (a sample)."""
    sample = min(n, 100_000)
    t0 = time.perf_counter()
    for i in range(sample):
        _baseline_event(i).headers()
    return sample / (time.perf_counter() - t0)


async def _publish_async(url: str, n: int) -> tuple[float, int, int]:
    """nats-py's ``publish_async`` of N events, then ``publish_async_completed``: (seconds, errors, bytes)."""
    import nats

    nc = await nats.connect(url, name="bench-logstream-publish-async")
    try:
        js = nc.jetstream()
        errors = 0
        payload_bytes = 0

        def on_done(fut: asyncio.Future[Any]) -> None:
            nonlocal errors
            if fut.cancelled() or fut.exception() is not None:
                errors += 1

        t0 = time.perf_counter()
        for i in range(n):
            ev = _baseline_event(i)
            payload_bytes += len(ev.data)
            fut = await js.publish_async(ev.subject, ev.data, headers=ev.headers())
            fut.add_done_callback(on_done)
        await js.publish_async_completed()
        elapsed = time.perf_counter() - t0
        return elapsed, errors, payload_bytes
    finally:
        await nc.close()


@dataclass(frozen=True)
class _Figures:
    stream_run: ProcRun
    stream_child_s: float
    stream_counts: tuple[int, int]
    pipelined_run: ProcRun
    pipelined_counts: tuple[int, int]
    baseline_s: float
    baseline_errors: int
    baseline_payload_bytes: int
    baseline_counts: tuple[int, int]
    prepare_rate: float
    devnull_child_s: list[float]
    cat_child_s: list[float]
    down_run: ProcRun
    down_child_s: float
    down_outbox: dict[str, int]
    down_outbox_bytes: dict[str, int]
    pending_run: ProcRun
    pending_rows: dict[str, int]
    flush_run: ProcRun
    flush_counts: tuple[int, int]
    flush_left: dict[str, int]


def _measure(cs: Path, lines: int, down_timeout: float, tmp: Path) -> _Figures:
    python = interpreter_of(cs)
    timeout = 120.0 + lines / 1000.0

    def child(label: str) -> tuple[list[str], Path]:
        time_file = tmp / f"{label}.child-time"
        return [python, "-c", CHILD_CODE, str(lines), str(time_file)], time_file

    def stream_argv(deployment_id: str, label: str) -> tuple[list[str], Path]:
        argv, time_file = child(label)
        head = [str(cs), "stream", "--deployment-id", deployment_id, "--job-id", str(_JOB_ID), "--end", "--quiet"]
        return [*head, "--", *argv], time_file

    # 1 + 2: server up.
    with BenchServer() as server:
        env = clean_env({"NATS_SERVERS": server.url, "CS_STATE_DIR": str(tmp / "state-up")})
        spawn([str(cs), "nats", "setup"], env, tmp, "setup-up", 60).check()
        argv, time_file = stream_argv(_DEPLOY_UP, "stream-up")
        stream_run = spawn(argv, env, tmp, "stream-up", timeout).check()
        stream_child_s = _child_time(time_file)
        counts_up = stream_counts(server.url, _DEPLOY_UP)
        argv, _ = stream_argv(_DEPLOY_PIPELINED, "stream-pipelined")
        env_pipelined = {**env, "CS_FAST_INGEST": "off"}
        pipelined_run = spawn(argv, env_pipelined, tmp, "stream-pipelined", timeout).check()
        counts_pipelined = stream_counts(server.url, _DEPLOY_PIPELINED)
        prepare_rate = _prepare_only(lines)
        baseline_s, baseline_errors, baseline_bytes = asyncio.run(_publish_async(server.url, lines))
        counts_baseline = stream_counts(server.url, _DEPLOY_BASELINE)
    devnull: list[float] = []
    cat: list[float] = []
    for i in range(_DEVNULL_RUNS):
        argv, time_file = child(f"devnull-{i}")
        spawn(argv, clean_env({}), tmp, f"devnull-{i}", timeout).check()
        devnull.append(_child_time(time_file))
        argv, time_file = child(f"cat-{i}")
        piped_to_cat(argv, clean_env({}), timeout)
        cat.append(_child_time(time_file))

    # 3: server down (nothing listens on the port of a stopped server), then back on that port.
    stopped = BenchServer().start()
    port = stopped.port
    stopped.stop()
    down_url = f"nats://127.0.0.1:{port}"
    state_down = tmp / "state-down"
    env_down = clean_env(
        {"NATS_SERVERS": down_url, "CS_STATE_DIR": str(state_down), "CS_DELIVERY_TIMEOUT": f"{down_timeout:g}s"}
    )
    argv, time_file = stream_argv(_DEPLOY_DOWN, "stream-down")
    down_run = spawn(argv, env_down, tmp, "stream-down", timeout).check()
    down_child_s = _child_time(time_file)
    kept = outbox_counts(state_down)
    kept_bytes = outbox_bytes(state_down)
    pending_run = spawn([str(cs), "events", "pending", "--json"], env_down, tmp, "pending", timeout).check()
    pending_rows = {
        kind: count_in_file(pending_run.stdout_path, f'"kind":"{kind}"'.encode())
        for kind in (c.EventKind.BUILD_LOG.value, c.EventKind.BUILD_LOG_END.value)
    }
    pending_run.stdout_path.unlink()  # hundreds of MB at the default size
    with BenchServer(port=port) as back:
        env_back = {**env_down, "NATS_SERVERS": back.url}
        spawn([str(cs), "nats", "setup"], env_back, tmp, "setup-back", 60).check()
        flush_run = spawn([str(cs), "events", "flush", "--timeout", f"{timeout:g}s"], env_back, tmp, "flush", timeout)
        flush_run.check()
        flush_counts = stream_counts(back.url, _DEPLOY_DOWN)
    return _Figures(
        stream_run=stream_run,
        stream_child_s=stream_child_s,
        stream_counts=counts_up,
        pipelined_run=pipelined_run,
        pipelined_counts=counts_pipelined,
        baseline_s=baseline_s,
        baseline_errors=baseline_errors,
        baseline_payload_bytes=baseline_bytes,
        baseline_counts=counts_baseline,
        prepare_rate=prepare_rate,
        devnull_child_s=devnull,
        cat_child_s=cat,
        down_run=down_run,
        down_child_s=down_child_s,
        down_outbox=kept,
        down_outbox_bytes=kept_bytes,
        pending_run=pending_run,
        pending_rows=pending_rows,
        flush_run=flush_run,
        flush_counts=flush_counts,
        flush_left=outbox_counts(state_down),
    )


def _check_counts(what: str, got: tuple[int, int], lines: int, ends: int) -> None:
    if got != (lines, ends):
        raise RuntimeError(
            f"{what}: the stream holds {got[0]} line(s) and {got[1]} end(s), expected {lines} and {ends}"
        )


def run(lines: int = DEFAULT_LINES, down_timeout: float = DEFAULT_DOWN_TIMEOUT, cs: Path | None = None) -> BenchResult:
    """Run the log-stream bench (its own servers and state dirs) and return its figures."""
    if lines < 1 or down_timeout <= 0:
        raise ValueError("lines must be >= 1 and down_timeout > 0")
    cs_path = cs or default_cs()
    if not cs_path.is_file():
        raise FileNotFoundError(f"no cs script at {cs_path} (run `make sync` first, or pass --cs)")
    with tempfile.TemporaryDirectory(prefix="cs-bench-logstream-") as tmp:
        f = _measure(cs_path, lines, down_timeout, Path(tmp))
    _check_counts("cs stream", f.stream_counts, lines, 1)
    _check_counts("cs stream, pipelined", f.pipelined_counts, lines, 1)
    _check_counts("publish_async baseline", f.baseline_counts, lines, 0)
    _check_counts("cs events flush", f.flush_counts, lines, 1)
    if f.baseline_errors:
        raise RuntimeError(f"publish_async: {f.baseline_errors} publish(es) failed")

    events = lines + 1
    cs_rate = events / f.stream_run.wall_s
    pipelined_rate = events / f.pipelined_run.wall_s
    baseline_rate = lines / f.baseline_s
    devnull = statistics.median(f.devnull_child_s)
    child_ratio = f.stream_child_s / devnull
    rss_mb = f.down_run.maxrss_kb / 1024.0
    flush_rate = events / f.flush_run.wall_s
    kept = sum(f.down_outbox.values())
    series = {
        "cs stream, server up: spawn -> exit (all acked)": Summary.of([f.stream_run.wall_s]),
        "cs stream, CS_FAST_INGEST=off: spawn -> exit": Summary.of([f.pipelined_run.wall_s]),
        "publish_async: N publishes -> all acked": Summary.of([f.baseline_s]),
        "child under cs stream (own run time)": Summary.of([f.stream_child_s]),
        "child to /dev/null (own run time)": Summary.of(f.devnull_child_s),
        "child piped to cat (own run time)": Summary.of(f.cat_child_s),
        "cs stream, server down: spawn -> exit": Summary.of([f.down_run.wall_s]),
        "child under cs stream, server down": Summary.of([f.down_child_s]),
        "cs events flush (outbox -> all acked)": Summary.of([f.flush_run.wall_s]),
        "cs events pending --json": Summary.of([f.pending_run.wall_s]),
    }
    ratios = {
        "lines/s cs stream / publish_async": cs_rate / baseline_rate,
        "lines/s cs stream pipelined (CS_FAST_INGEST=off) / publish_async": pipelined_rate / baseline_rate,
        "lines/s cs stream fast-ingest / pipelined": cs_rate / pipelined_rate,
        "child time under cs / to /dev/null": child_ratio,
        "child time under cs / piped to cat": f.stream_child_s / statistics.median(f.cat_child_s),
        "child time piped to cat / to /dev/null": statistics.median(f.cat_child_s) / devnull,
        "cs wall / child to /dev/null": f.stream_run.wall_s / devnull,
        "child time under cs, server down / to /dev/null": f.down_child_s / devnull,
        "lines/s cs events flush / publish_async": flush_rate / baseline_rate,
    }
    payload_avg = f.baseline_payload_bytes / lines
    return BenchResult(
        bench="logstream",
        title="build.log end to end: cs stream vs nats-py publish_async; build slow-down; server down",
        params={"lines": lines, "down_timeout_s": down_timeout, "cs": str(cs_path)},
        series=series,
        ratios=ratios,
        goals=[
            Goal("cs stream lines/s (end to end, acked)", cs_rate, GOAL_LINES_PER_S, "lines/s", at_least=True),
            Goal("lines/s vs publish_async", cs_rate / baseline_rate, GOAL_VS_PUBLISH_ASYNC, "x", at_least=True),
            Goal("child time under cs / to /dev/null", child_ratio, GOAL_CHILD_RATIO, "x"),
            Goal("peak RSS of cs stream, server down", rss_mb, GOAL_PEAK_RSS_MB, "MB"),
        ],
        details={
            "throughput (lines/s)": {
                "cs stream, N lines + end, acked": round(cs_rate),
                "cs stream with CS_FAST_INGEST=off (pipelined)": round(pipelined_rate),
                "publish_async, N lines, acked": round(baseline_rate),
                "cs stream, server down (journal only, incl. the delivery timeout)": round(events / f.down_run.wall_s),
                "cs events flush": round(flush_rate),
                "baseline payload prep only (<= 100k sample, not publishing)": round(f.prepare_rate),
            },
            "stream holds (lines, ends)": {
                "cs stream": list(f.stream_counts),
                "cs stream, pipelined": list(f.pipelined_counts),
                "publish_async": list(f.baseline_counts),
                "after cs events flush": list(f.flush_counts),
            },
            "payload bytes (avg per line)": round(payload_avg, 1),
            "cs stream, server up: still delivering after the child exited (s)": round(
                f.stream_run.wall_s - f.stream_child_s, 2
            ),
            "peak RSS (MB)": {
                "cs stream, server up": round(f.stream_run.maxrss_kb / 1024.0, 1),
                "cs stream, server down": round(rss_mb, 1),
                "cs events pending --json": round(f.pending_run.maxrss_kb / 1024.0, 1),
                "cs events flush": round(f.flush_run.maxrss_kb / 1024.0, 1),
            },
            "server down: outbox kept (by kind)": f.down_outbox,
            "server down: outbox kept (total)": kept,
            "server down: outbox kept, all N+1": kept == events,
            "server down: outbox files (bytes)": f.down_outbox_bytes,
            "server down: cs events pending --json rows": f.pending_rows,
            "after flush: outbox left": sum(f.flush_left.values()),
        },
        notes=[
            "times are single runs (the child to /dev/null or cat: median of 3); throughput = events / wall time",
            "cs stream wall includes cs start-up (~0.15 s), the child's run and waiting for the last PubAck",
            "publish_async: nats-py defaults (4000 pending), payloads encoded in the timed loop",
            f"server down: CS_DELIVERY_TIMEOUT={down_timeout:g}s, so the wall includes that wait",
        ],
    )


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES, help=f"lines printed (default {DEFAULT_LINES})")
    parser.add_argument(
        "--down-timeout",
        type=float,
        default=DEFAULT_DOWN_TIMEOUT,
        help=f"CS_DELIVERY_TIMEOUT in seconds for the server-down run (default {DEFAULT_DOWN_TIMEOUT:g})",
    )
    parser.add_argument("--cs", type=Path, default=None, help="the cs script (default: next to this interpreter)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logstream", description=__doc__.split("\n\n")[0])
    add_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    emit([run(lines=args.lines, down_timeout=args.down_timeout, cs=args.cs)], args.json)


if __name__ == "__main__":
    main()

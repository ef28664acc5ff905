"""Process start-up cost of the ``cs`` console script, against the bare interpreter in the same run.

Owns the start-up bench. With a real ``nats-server`` (stream created first by ``cs nats setup``) and a
temporary ``CS_STATE_DIR``, rounds run three commands as subprocesses, in a rotating order so drifting
noise hits all alike, and time each from spawn to exit:

- ``python -c pass``: the interpreter's own start-up (the same interpreter the ``cs`` script uses);
- ``cs --version``: the CLI's import cost;
- ``cs events publish deployment.status.changed --data ... --json``: start → journal → connect →
  publish → PubAck → exit; the JSON it prints is checked to hold the stream sequence (acknowledged).

Medians and ratios are printed (goals, not asserted: publish ≤ 400 ms, ``--version`` ≤ 150 ms), plus the
most expensive imports (top level and one level down) of both commands from ``python -X importtime``.

``python -m bench.startup [--n 15] [--warmup 2] [--imports 10] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report import BenchResult, Goal, Summary, add_common_args, emit
from bench.server import BenchServer

GOAL_PUBLISH_MS = 400.0
GOAL_VERSION_MS = 150.0
_TIMEOUT = 60.0
_PAYLOAD = '{"jobId": 1, "status": "IN_PROGRESS"}'


@dataclass(frozen=True)
class ImportCost:
    """One import of a command, from ``python -X importtime``; ``parent`` is "" at top level."""

    module: str
    parent: str
    cumulative_ms: float
    self_ms: float

    def __str__(self) -> str:
        where = f" (by {self.parent})" if self.parent else ""
        return f"{self.module}{where}: {self.cumulative_ms:.1f} ms cumulative, {self.self_ms:.1f} ms self"


def default_cs() -> Path:
    """The ``cs`` script next to the running interpreter (the venv's)."""
    return Path(sys.executable).parent / "cs"


def interpreter_of(script: Path) -> str:
    """The interpreter named by ``script``'s shebang, else the running one."""
    try:
        with script.open("rb") as fh:
            first = fh.readline().decode(errors="replace").strip()
    except OSError:
        return sys.executable
    if first.startswith("#!"):
        candidate = first[2:].strip().split()[0]
        if Path(candidate).is_file():
            return candidate
    return sys.executable


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The current environment without NATS_/CS_/NOMAD_ settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "CS_", "NOMAD_"))}
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def _run(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(argv), env=dict(env), capture_output=True, text=True, timeout=_TIMEOUT, stdin=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return elapsed, proc


def _check_acknowledged(stdout: str) -> None:
    doc = json.loads(stdout.strip().splitlines()[-1])
    if not (isinstance(doc, dict) and doc.get("stream") and int(doc.get("seq", 0)) > 0):
        raise RuntimeError(f"cs events publish printed no PubAck: {stdout.strip()!r}")


def parse_importtime(stderr: str, top: int, max_depth: int = 1) -> list[ImportCost]:
    """The ``top`` costliest imports nested at most ``max_depth`` deep in ``python -X importtime`` output.

    Depth 0 is what the script imported itself (or a function imported at run time); depth 1 what those
    imported directly. A parent is listed after its children, so the lines are read bottom-up.
    """
    rows: list[tuple[int, str, float, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        name = parts[2]
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((depth, name.strip(), int(parts[1]) / 1000.0, int(parts[0]) / 1000.0))
    costs: list[ImportCost] = []
    parents: dict[int, str] = {}
    for depth, module, cumulative, own in reversed(rows):
        parents[depth] = module
        if depth <= max_depth:
            costs.append(ImportCost(module, parents.get(depth - 1, "") if depth else "", cumulative, own))
    costs.sort(key=lambda c: c.cumulative_ms, reverse=True)
    return costs[:top]


def run(n: int = 15, warmup: int = 2, imports: int = 10, cs: Path | None = None) -> BenchResult:
    """Run the start-up bench with its own server and state dir; return its figures."""
    if n < 1 or warmup < 0:
        raise ValueError("n must be >= 1 and warmup >= 0")
    cs_path = cs or default_cs()
    if not cs_path.is_file():
        raise FileNotFoundError(f"no cs script at {cs_path} (run `make sync` first, or pass --cs)")
    python = interpreter_of(cs_path)
    publish = [str(cs_path), "events", "publish", "deployment.status.changed", "--data", _PAYLOAD]
    commands: dict[str, list[str]] = {
        "python -c pass": [python, "-c", "pass"],
        "cs --version": [str(cs_path), "--version"],
        "cs events publish (to PubAck, exit)": [*publish, "--deployment", "bench-startup", "--json"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory(prefix="cs-bench-startup-") as tmp, BenchServer() as server:
        env = clean_env({"NATS_SERVERS": server.url, "CS_STATE_DIR": str(Path(tmp) / "state")})
        _run([str(cs_path), "nats", "setup"], env)
        names = list(commands)
        for i in range(warmup + n):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed, proc = _run(commands[name], env)
                if name.startswith("cs events publish"):
                    _check_acknowledged(proc.stdout)
                if i >= warmup:
                    samples[name].append(elapsed)
        _, version_proc = _run([python, "-X", "importtime", str(cs_path), "--version"], env)
        _, publish_proc = _run([python, "-X", "importtime", *publish], env)
    series = {name: Summary.of(values) for name, values in samples.items()}
    base = statistics.median(samples["python -c pass"])
    version = statistics.median(samples["cs --version"])
    pub = statistics.median(samples["cs events publish (to PubAck, exit)"])
    ratios = {
        "median cs --version / python -c pass": version / base,
        "median cs events publish / python -c pass": pub / base,
        "median cs events publish / cs --version": pub / version,
    }
    return BenchResult(
        bench="startup",
        title="cs process start-up: --version and events publish, vs the bare interpreter",
        params={"n": n, "warmup": warmup, "cs": str(cs_path)},
        series=series,
        ratios=ratios,
        goals=[
            Goal("median cs events publish", pub * 1000.0, GOAL_PUBLISH_MS, "ms"),
            Goal("median cs --version", version * 1000.0, GOAL_VERSION_MS, "ms"),
        ],
        details={
            "above interpreter (ms)": {
                "cs --version": round((version - base) * 1000.0, 1),
                "cs events publish": round((pub - base) * 1000.0, 1),
            },
            "top imports, cs --version": [str(c) for c in parse_importtime(version_proc.stderr, imports)],
            "top imports, cs events publish": [str(c) for c in parse_importtime(publish_proc.stderr, imports)],
        },
        notes=["times are spawn -> exit of a subprocess; the three commands rotate order every round"],
    )


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=15, help="measured runs of each command (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs first (default 2)")
    parser.add_argument("--imports", type=int, default=10, help="costliest imports to list (default 10)")
    parser.add_argument("--cs", type=Path, default=None, help="the cs script (default: next to this interpreter)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    add_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    emit([run(n=args.n, warmup=args.warmup, imports=args.imports, cs=args.cs)], args.json)


if __name__ == "__main__":
    main()

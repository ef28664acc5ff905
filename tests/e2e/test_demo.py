"""`make demo`'s script: a real deployment on the embedded server, replayed, destroyed, nothing left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _running(pattern: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if pattern in line and "ps -eo" not in line]


def test_demo_deploys_answers_replays_and_leaves_nothing_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "CS_", "NOMAD_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["TMPDIR"] = str(tmp_path)
    env["NO_COLOR"] = "1"
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "stream CLOUDSTATION created" in out
    assert "-> hello from cs" in out
    assert "web: running (pid" in out
    # the replay shows the whole deployment, in the contract's order
    replay = out[out.index("replayed from JetStream") :]
    order = ["deployment.status.changed", "[build] ==> build: exec", "[release] ==> release: http-check"]
    order += ["deployment.succeeded", "build.log.end"]
    positions = [replay.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "destroyed: web" in out
    assert "web: stopped" in out
    assert not _running(str(tmp_path)), "the demo left a process running"
    assert list(tmp_path.iterdir()) == [], "the demo left files behind"

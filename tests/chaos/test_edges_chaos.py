"""The edges of delivery under hostile conditions (issue 11), with real servers and real processes.

- A poison event (one that can never be delivered) among 10k good ones from 3 deployments sharing an
  outbox: set aside, never resent, blocking nothing.
- A full disk under ``cs stream``: the build's exit code survives and the message says what to do.
- A second signal during the 2 s grace never orphans the build (``cs stream``, ``cs up``, ``cs dispatch``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.recording_backend import closed_port_url
from tests.conftest import CsRunner
from tests.natsserver import NatsServer
from tests.proctools import alive
from tests.streamread import read_stream

pytestmark = pytest.mark.slow

SERVER_MAX_PAYLOAD = 64 * 1024


def _pending(cs: CsRunner) -> list[dict[str, object]]:
    res = cs("events", "pending", "--json")
    assert res.returncode == 0, res.stderr
    pending: list[dict[str, object]] = json.loads(res.stdout)
    return pending


def _print_lines(count: int, tag: str) -> list[str]:
    return [sys.executable, "-c", f"for n in range({count}): print('{tag} line', n)"]


def _plant_legacy_poison(state_dir: Path, deployment_id: str, kind: str = "build.log.end") -> None:
    """A row journaled by an older cs (no door) whose process died: its subject is far longer than the
    server's control-line limit, which drops the connection of whoever sends it."""
    db = sqlite3.connect(state_dir / "outbox.sqlite3")
    if kind == "build.log":
        fields = {"jobId": 9, "serviceId": "s", "ownerId": "o", "logOutput": "stdout", "content": "poison"}
        payload = json.dumps({"deploymentId": deployment_id, **fields, "timestamp": 1, "sequence": 1}).encode()
    else:
        payload = json.dumps({"deploymentId": deployment_id, "jobId": 9, "status": "failed"}).encode()
    with db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, "
            "msg_id TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, deployment_id TEXT NOT NULL, "
            "data BLOB NOT NULL, created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
            "last_error TEXT NOT NULL DEFAULT '')"
        )
        db.execute(
            "INSERT INTO events (owner, msg_id, kind, subject, deployment_id, data, created_at) "
            "VALUES ('4242-deadbeef0000', 'legacy-poison-1', ?, ?, ?, ?, ?)",
            (kind, f"{kind}.{deployment_id}", deployment_id, payload, time.time()),
        )
    db.close()


def test_poison_events_among_10k_from_3_deployments_sharing_an_outbox_block_nothing(
    cs: CsRunner, state_dir: Path, tmp_path: Path
) -> None:
    server = NatsServer(tmp_path / "nats", config=f"max_payload: {SERVER_MAX_PAYLOAD}").start()
    try:
        env = {"NATS_SERVERS": server.url}
        assert cs("nats", "setup", env=env).returncode == 0
        # Poison 1: from an older cs, a 5 000-character deployment id in the subject, owner dead.
        _plant_legacy_poison(state_dir, "p" * 5000)
        # Poison 2: under the door's 1 MiB while the server's limit is unknown, over the server's 64 KiB;
        # journaled while the server is down, and left by a process that gave up (exit 75).
        server.stop()
        big = {
            "deploymentId": "dep-poison",
            "jobId": 8,
            "serviceId": "svc",
            "ownerId": "o",
            "logOutput": "stdout",
            "content": "x" * (100 * 1024),
            "timestamp": 1,
            "sequence": 1,
            "phase": "build",
        }
        res = cs("events", "publish", "build.log", "--data", json.dumps(big), env=env | {"CS_DELIVERY_TIMEOUT": "1s"})
        assert res.returncode == 75, res.stderr
        server.start()

        # Three deployments, 10 000 lines in all, three processes sharing the outbox: the first adopts
        # both poisons and must deliver everything else anyway.
        counts = {"dep-a": 3334, "dep-b": 3333, "dep-c": 3333}
        procs = {
            dep: cs.popen(
                "stream",
                "--deployment-id",
                dep,
                "--job-id",
                "7",
                "--end",
                "--quiet",
                "--",
                *_print_lines(n, dep),
                env=env,
            )
            for dep, n in counts.items()
        }
        for dep, proc in procs.items():
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, (dep, err)
            assert "Traceback" not in err

        stored = read_stream(server.url)
        for dep, n in counts.items():
            lines = [m for m in stored if m.subject == f"build.log.{dep}"]
            assert sorted(m.json["sequence"] for m in lines) == list(range(1, n + 1)), dep
            ends = [m.json for m in stored if m.subject == f"build.log.end.{dep}"]
            assert ends == [{"deploymentId": dep, "jobId": 7, "status": "success"}]
        assert len(stored) == sum(counts.values()) + 3
        assert not any("p" * 100 in m.subject or m.subject == "build.log.dep-poison" for m in stored)

        # Both poisons are kept, said to be set aside, with the reason; nothing else is pending.
        pending = _pending(cs)
        assert [p["state"] for p in pending] == ["set aside", "set aside"]
        reasons = sorted(str(p["last_error"]) for p in pending)
        assert any("is longer than 1024" in r for r in reasons), reasons
        assert any(f"exceeds the server's max_payload ({SERVER_MAX_PAYLOAD} bytes)" in r for r in reasons), reasons
        # A later process never resends them: flush says they are set aside (exit 1), the stream is unchanged.
        res = cs("events", "flush", env=env)
        assert res.returncode == 1, res.stderr
        assert "2 event(s) set aside" in res.stderr
        assert len(read_stream(server.url)) == len(stored)
        text = cs("events", "pending", "--data")
        assert text.returncode == 0
        assert "[set aside]" in text.stdout and '"content":"xxxx' in text.stdout
        assert "(5014 characters)" in text.stdout  # the poison subject is cut in the listing
    finally:
        server.kill()


def test_a_legacy_poison_log_line_is_set_aside_on_the_fast_ingest_path_too(
    cs: CsRunner, state_dir: Path, tmp_path: Path
) -> None:
    """Log lines may go out as fast-ingest batches: the door before each send covers that path as well."""
    server = NatsServer(tmp_path / "nats").start()
    try:
        env = {"NATS_SERVERS": server.url}
        setup = cs("nats", "setup", env=env)
        assert setup.returncode == 0, setup.stderr
        check = cs("nats", "check", env=env)
        assert "fast-ingest" in check.stdout + check.stderr
        _plant_legacy_poison(state_dir, "q" * 5000, kind="build.log")
        res = cs("stream", "--deployment-id", "dep-ok", "--job-id", "3", "--", *_print_lines(50, "ok"), env=env)
        assert res.returncode == 0, res.stderr
        stored = read_stream(server.url)
        assert [m.json["content"] for m in stored if m.subject == "build.log.dep-ok"] == [
            f"ok line {n}\n" for n in range(50)
        ]
        assert not any("q" * 100 in m.subject for m in stored)
        pending = _pending(cs)
        assert [p["state"] for p in pending] == ["set aside"]
        assert "is longer than 1024" in str(pending[0]["last_error"])
    finally:
        server.kill()


# -- full disk ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that fills up (root in CI; skipped locally only when mounting is not allowed)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {res.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_during_cs_stream_keeps_the_builds_exit_code_and_says_what_to_do(
    cs: CsRunner, small_disk: Path
) -> None:
    down = closed_port_url().replace("http://", "nats://")
    state = small_disk / "state"
    env = {"NATS_SERVERS": down, "CS_DELIVERY_TIMEOUT": "1s", "CS_STATE_DIR": str(state)}
    build = [sys.executable, "-c", "import sys\nfor n in range(120000): print('a full disk line', n)\nsys.exit(3)"]
    res = cs("stream", "--deployment-id", "dep-full", "--job-id", "1", "--end", "--quiet", "--", *build, env=env)
    assert res.returncode == 3, res.stderr  # the build's own exit code
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert "is full" in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "could not be kept" in last and f"free space in CS_STATE_DIR ({state})" in last, last
    # What was kept is intact and listed.
    listed = cs("events", "pending", "--json", env={"CS_STATE_DIR": str(state)})
    assert listed.returncode == 0, listed.stderr
    kept = json.loads(listed.stdout)
    assert kept and all(p["subject"] == "build.log.dep-full" for p in kept)
    # Without --end too: the exit code is the build's.
    res = cs("stream", "--deployment-id", "dep-full2", "--job-id", "1", "--quiet", "--", *build, env=env)
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr
    # A disk so full that no outbox can be opened: the build still runs and keeps its exit code.
    with contextlib.suppress(OSError), open(small_disk / "filler", "wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
    fresh = env | {"CS_STATE_DIR": str(small_disk / "fresh-state")}
    res = cs(
        "stream", "--deployment-id", "dep-full3", "--job-id", "1", "--end", "--", *build[:2], "print('hi')", env=fresh
    )
    assert res.returncode == 0, res.stderr
    assert "hi" in res.stdout  # the build ran
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert "the log of deployment dep-full3 was not published" in res.stderr.strip().splitlines()[-1], res.stderr


# -- a second signal ---------------------------------------------------------------------------------------

# A build whose shell and grandchild ignore SIGTERM: only the SIGKILL after the grace period stops them.
STUBBORN = "trap '' TERM; (exec sleep 271) & echo $! > {pid}; echo started; wait"  # sleep inherits the ignored TERM
# A build whose shell dies at SIGTERM while its grandchild ignores it: the group must still be SIGKILLed.
LEADER_DIES = "(trap '' TERM; exec sleep 271) & echo $! > {pid}; echo started; wait"


def _signal_twice_and_wait(proc: subprocess.Popen[str], pid_file: Path) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    assert alive(grandchild)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # inside the 2 s grace
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)
            raise AssertionError("the build's grandchild was orphaned")
    return proc.returncode, err


@pytest.mark.parametrize("build", [STUBBORN, LEADER_DIES], ids=["all-ignore-term", "leader-dies"])
def test_second_sigterm_during_the_grace_never_orphans_a_cs_stream_build(
    cs: CsRunner, nats_server: NatsServer, tmp_path: Path, build: str
) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    pid_file = tmp_path / "grandchild.pid"
    proc = cs.popen(
        "stream",
        "--deployment-id",
        "dep-sig",
        "--job-id",
        "1",
        "--end",
        "--quiet",
        "--",
        "sh",
        "-c",
        STUBBORN.format(pid=pid_file),
        env=env,
    )
    rc, err = _signal_twice_and_wait(proc, pid_file)
    assert rc == 128 + signal.SIGTERM, err
    assert [m.json["status"] for m in read_stream(nats_server.url) if m.subject == "build.log.end.dep-sig"] == [
        "failed"
    ]


def _assert_failure_reported(cs: CsRunner, server: NatsServer, dep: str) -> None:
    """The failure is published, or kept in the outbox when the second signal ended cs first."""
    subjects = [m.subject for m in read_stream(server.url)]
    subjects += [str(p["subject"]) for p in _pending(cs)]
    assert subjects.count("deployment.failed") == 1, subjects
    assert subjects.count(f"build.log.end.{dep}") == 1, subjects
    assert subjects.index("deployment.failed") < subjects.index(f"build.log.end.{dep}")


def test_second_sigterm_during_the_grace_never_orphans_a_cs_up_build(
    cs: CsRunner, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    pid_file = tmp_path / "grandchild.pid"
    hcl = tmp_path / "cloudstation.hcl"
    hcl.write_text(
        f'project = "p"\napp "web" {{\n  path = "."\n'
        f'  build {{\n    use = "exec"\n    build_cmd = {json.dumps(LEADER_DIES.format(pid=pid_file))}\n  }}\n'
        '  deploy {\n    use = "noop"\n  }\n}\n'
    )
    proc = cs.popen("up", "-f", str(hcl), "--deployment-id", "dep-up-sig", "--job-id", "2", "--quiet", env=env)
    rc, err = _signal_twice_and_wait(proc, pid_file)
    assert rc == 128 + signal.SIGTERM, err
    _assert_failure_reported(cs, nats_server, "dep-up-sig")


def test_sigterm_twice_to_cs_dispatch_stops_the_build_and_reports_the_failure(
    cs: CsRunner, nats_server: NatsServer, tmp_path: Path
) -> None:
    from tests.dispatch.dispatch_kit import IDENTITY, b64, tool_path
    from tests.fakes.fakebin import FakeBin
    from tests.sources.sources_testkit import make_bare_repo

    fake_bin = FakeBin(tmp_path / "fakes", tmp_path / "fake-calls.jsonl")
    for tool in ("docker", "railpack", "nixpacks", "nomad-pack", "nomad"):
        fake_bin.add(tool)
    env = {"NATS_SERVERS": nats_server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    make_bare_repo(tmp_path / "remote", "acme/web", {"main": {"README": "x"}})
    pid_file = tmp_path / "grandchild.pid"
    params = {
        **IDENTITY,
        "repository": "acme/web",
        "branch": "main",
        "deploy": "noop",
        "build": {"builder": "exec", "buildCommand": LEADER_DIES.format(pid=pid_file)},
    }
    proc = cs.popen(
        "dispatch",
        env=env
        | {
            "PATH": tool_path(fake_bin),
            "CS_WORK_DIR": str(tmp_path / "work"),
            "NOMAD_ALLOC_DIR": str(tmp_path / "alloc"),
            "CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}",
            "NOMAD_META_TASK": "deploy-repository",
            "NOMAD_META_PARAMS": b64(params),
        },
    )
    rc, err = _signal_twice_and_wait(proc, pid_file)
    assert rc == 128 + signal.SIGTERM, err
    _assert_failure_reported(cs, nats_server, "dep-1")

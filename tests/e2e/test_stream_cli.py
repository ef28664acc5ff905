"""`cs stream` end to end: a chatty build's output reaches the stream complete, ordered, and clean."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from cloudstation.redaction import Redactor
from tests.conftest import CsRunner
from tests.natsserver import NatsServer
from tests.streamread import StoredMsg, read_stream

CHATTY = str(Path(__file__).with_name("chatty_build.py"))
CANARY = "CANARY-7f3a9c-SECRET"
LINES = 100_000


def _setup(cs: CsRunner, url: str) -> None:
    assert cs("nats", "setup", env={"NATS_SERVERS": url}).returncode == 0


def _chatty_stream(deployment: str, display: str, done: Path) -> list[str]:
    """``cs stream`` arguments running the chatty build as job 9 of ``deployment``, canary redacted."""
    return [
        "stream",
        "--deployment-id",
        deployment,
        "--job-id",
        "9",
        "--service-id",
        "svc",
        "--owner-id",
        "own",
        "--end",
        "--redact-env",
        "BUILD_TOKEN",
        display,
        "--",
        sys.executable,
        CHATTY,
        str(LINES),
        CANARY,
        str(done),
    ]


def _check_stream(stored: list[StoredMsg], done: Path, deployment: str) -> None:
    logs = [m for m in stored if m.subject == f"build.log.{deployment}"]
    ends = [m for m in stored if m.subject == f"build.log.end.{deployment}"]
    assert len(ends) == 1
    assert stored[-1].subject == f"build.log.end.{deployment}", "build.log.end is not the last message"
    assert ends[0].json == {"deploymentId": deployment, "jobId": 9, "status": "success"}
    assert len({m.msg_id for m in logs}) == len(logs), "a log event is stored twice"
    payloads = sorted((m.json for m in logs), key=lambda p: p["sequence"])
    assert [p["sequence"] for p in payloads] == list(range(1, len(payloads) + 1)), "sequence not contiguous"
    assert {p["phase"] for p in payloads} == {"build"}
    assert all(p["jobId"] == 9 and p["serviceId"] == "svc" and p["ownerId"] == "own" for p in payloads)
    redactor = Redactor([CANARY])
    for output in ("stdout", "stderr"):
        sent = Path(f"{done}.{output}").read_bytes().decode("utf-8", "replace")
        got = "".join(p["content"] for p in payloads if p["logOutput"] == output)
        assert got == redactor.redact(sent), f"{output} does not reassemble"
    assert all(CANARY not in m.data.decode() for m in stored)
    # the 3 MB line was split into events that each fit the server's max_payload
    assert max(len(m.data) for m in logs) < 1024 * 1024
    assert sum(1 for p in payloads if p["content"].startswith("BBBB")) >= 3


def _assert_no_canary_on_disk(state_dir: Path) -> None:
    for path in state_dir.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), f"canary found in {path}"


@pytest.mark.slow
def test_scenario_1_hundred_thousand_lines_complete_ordered_redacted(
    cs: CsRunner, nats_server: NatsServer, tmp_path: Path, state_dir: Path
) -> None:
    _setup(cs, nats_server.url)
    done = tmp_path / "done"
    res = cs(
        *_chatty_stream("dep-chatty", "--json", done),
        env={"NATS_SERVERS": nats_server.url, "BUILD_TOKEN": CANARY},
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert CANARY not in res.stdout + res.stderr
    shown = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["sequence"] for d in shown] == list(range(1, len(shown) + 1))
    _check_stream(read_stream(nats_server.url), done, "dep-chatty")
    _assert_no_canary_on_disk(state_dir)


@pytest.mark.slow
def test_scenario_2_server_down_10s_mid_build_never_blocks_the_build(
    cs: CsRunner, tmp_path: Path, state_dir: Path
) -> None:
    server = NatsServer(tmp_path / "n").start()
    try:
        _setup(cs, server.url)
        done = tmp_path / "done"
        proc = cs.popen(
            *_chatty_stream("dep-outage", "--quiet", done),
            env={"NATS_SERVERS": server.url, "BUILD_TOKEN": CANARY, "NATS_PUBLISH_TIMEOUT": "1s"},
        )
        deadline = time.monotonic() + 30
        while not read_stream(server.url) and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()
        down_at = time.monotonic()
        while not done.exists() and time.monotonic() - down_at < 10:
            time.sleep(0.05)
        assert done.exists(), "the build did not finish while the server was down: it blocked on NATS"
        assert proc.poll() is None, "cs exited while its events could not be delivered"
        time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        server.start()
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        assert CANARY not in out + err
        assert "disconnected from NATS" in err
        _check_stream(read_stream(server.url), done, "dep-outage")
        _assert_no_canary_on_disk(state_dir)
    finally:
        server.kill()


def test_exit_code_is_the_commands_and_end_reports_failure(cs: CsRunner, nats_server: NatsServer) -> None:
    _setup(cs, nats_server.url)
    env = {"NATS_SERVERS": nats_server.url}
    res = cs(
        "stream",
        "--deployment-id",
        "d3",
        "--job-id",
        "3",
        "--end",
        "--quiet",
        "--",
        "sh",
        "-c",
        "echo boom; exit 3",
        env=env,
    )
    assert res.returncode == 3
    stored = read_stream(nats_server.url)
    assert [m.subject for m in stored] == ["build.log.d3", "build.log.end.d3"]
    assert stored[0].json["content"] == "boom\n"
    assert stored[1].json["status"] == "failed"


def test_missing_command_exits_127_and_is_logged(cs: CsRunner, nats_server: NatsServer) -> None:
    _setup(cs, nats_server.url)
    res = cs(
        "stream",
        "--deployment-id",
        "d4",
        "--job-id",
        "4",
        "--end",
        "--quiet",
        "--",
        "no-such-tool-xyz",
        env={"NATS_SERVERS": nats_server.url},
    )
    assert res.returncode == 127
    stored = read_stream(nats_server.url)
    assert stored[0].json["content"] == "cs: command not found: no-such-tool-xyz\n"
    assert stored[0].json["logOutput"] == "stderr"
    assert stored[1].json["status"] == "failed"


def test_invalid_deployment_id_is_a_usage_error(cs: CsRunner, nats_server: NatsServer) -> None:
    res = cs("stream", "--deployment-id", "a>b", "--job-id", "1", "--", "true", env={"NATS_SERVERS": nats_server.url})
    assert res.returncode == 2
    assert "deploymentId 'a>b' cannot be used in a subject" in res.stderr


def test_server_down_from_the_start_exits_after_the_delivery_timeout_keeping_everything(
    cs: CsRunner, state_dir: Path
) -> None:
    """Regression: nats-py's endless initial connect ignored cancellation and hung cs at exit."""
    from tests.natsserver import free_port

    env = {"NATS_SERVERS": f"127.0.0.1:{free_port()}", "CS_DELIVERY_TIMEOUT": "500ms"}
    for attempt in range(5):
        dep = f"down-{attempt}"
        res = cs(
            "stream",
            "--deployment-id",
            dep,
            "--job-id",
            "1",
            "--end",
            "--quiet",
            "--",
            "echo",
            "x",
            env=env,
            timeout=30,
        )
        assert res.returncode == 0, res.stderr
        assert f"{2 * (attempt + 1)} event(s) not delivered yet" in res.stderr  # earlier ones adopted
    pending = json.loads(cs("events", "pending", "--json").stdout)
    assert len(pending) == 10

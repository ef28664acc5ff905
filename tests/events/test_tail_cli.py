"""`cs events tail`: replay a deployment's history, and follow the stream live."""

from __future__ import annotations

import json
import select
import signal

from tests.conftest import CsRunner
from tests.natsserver import NatsServer


def test_replays_only_that_deployments_history_in_order(cs: CsRunner, nats_server: NatsServer) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    for dep in ("dep-a", "dep-b"):
        res = cs(
            "stream", "--deployment-id", dep, "--job-id", "5", "--end", "--quiet", "--", "echo", f"hello {dep}", env=env
        )
        assert res.returncode == 0, res.stderr
    res = cs("events", "tail", "--deployment", "dep-a", "--no-follow", "--json", env=env)
    assert res.returncode == 0, res.stderr
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["subject"] for d in docs] == ["build.log.dep-a", "build.log.end.dep-a"]
    assert docs[0]["data"]["content"] == "hello dep-a\n"
    assert docs[0]["headers"]["Cs-Deployment-Id"] == "dep-a"
    human = cs("events", "tail", "--deployment", "dep-b", "--no-follow", env=env)
    lines = human.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("[build] hello dep-b")
    assert "build.log.end deploymentId=dep-b jobId=5 status=success" in lines[1]


def test_no_follow_on_an_empty_stream_exits_at_once(cs: CsRunner, nats_server: NatsServer) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    res = cs("events", "tail", "--no-follow", env=env, timeout=20)
    assert res.returncode == 0 and res.stdout == ""


def test_without_a_stream_it_says_to_run_setup(cs: CsRunner, nats_server: NatsServer) -> None:
    res = cs("events", "tail", "--no-follow", env={"NATS_SERVERS": nats_server.url})
    assert res.returncode == 75
    assert "run `cs nats setup`" in res.stderr


def test_follows_new_events_live(cs: CsRunner, nats_server: NatsServer) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    proc = cs.popen("events", "tail", "--json", env=env)
    try:
        out = ""
        for _ in range(40):  # tail only shows events published after it subscribed: publish until one shows
            res = cs("events", "publish", "job.destroyed", "--data", '{"id": "svc-9", "reason": "delete"}', env=env)
            assert res.returncode == 0
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                out = proc.stdout.readline()
                break
        doc = json.loads(out)
        assert doc["subject"] == "job.destroyed"
        assert doc["data"] == {"id": "svc-9", "reason": "delete"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)

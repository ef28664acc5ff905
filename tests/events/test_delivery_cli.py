"""`cs events publish / pending / flush` and `cs nats setup / check` against real nats-servers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import nkeys

from tests.conftest import CsRunner
from tests.events.samples import SUCCEEDED, publish_succeeded
from tests.natsserver import NatsServer
from tests.streamread import read_stream


def _setup(cs: CsRunner, url: str, *extra: str) -> None:
    res = cs("nats", "setup", *extra, env={"NATS_SERVERS": url})
    assert res.returncode == 0, res.stderr


def _new_user_seed() -> str:
    import os

    seed: bytes = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode()


def test_publish_prints_the_ack_and_the_stream_holds_the_event_once(cs: CsRunner, nats_server: NatsServer) -> None:
    _setup(cs, nats_server.url)
    res = publish_succeeded(cs, {"NATS_SERVERS": nats_server.url}, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["subject"] == "deployment.succeeded"
    assert out["stream"] == "CLOUDSTATION"
    assert out["seq"] == 1
    assert out["duplicate"] is False
    stored = read_stream(nats_server.url)
    assert len(stored) == 1
    assert stored[0].json == json.loads(SUCCEEDED)
    assert stored[0].msg_id == out["msg_id"]
    assert stored[0].headers["Cs-Event"] == "deployment.succeeded"
    assert stored[0].headers["Cs-Deployment-Id"] == "dep-7"
    assert cs("events", "pending", "--json").stdout.strip() == "[]"


def test_prefix_applies_to_subject_and_stream_name(cs: CsRunner, nats_server: NatsServer) -> None:
    env = {"NATS_SERVERS": nats_server.url.removeprefix("nats://"), "NATS_STREAM_PREFIX": "cs"}
    assert cs("nats", "setup", env=env).returncode == 0
    log_line = {
        "deploymentId": "dep-7",
        "jobId": 7,
        "serviceId": "svc",
        "ownerId": "o",
        "logOutput": "stdout",
        "content": "hi\n",
        "timestamp": 1,
        "sequence": 1,
        "phase": "build",
    }
    res = cs("events", "publish", "build.log", "--data", json.dumps(log_line), env=env)
    assert res.returncode == 0, res.stderr
    assert "cs.build.log.dep-7 -> stream cs_cloudstation seq 1" in res.stdout
    assert [m.subject for m in read_stream(nats_server.url, "cs_cloudstation")] == ["cs.build.log.dep-7"]


def test_invalid_payload_exits_2_naming_the_field_and_journals_nothing(cs: CsRunner, nats_server: NatsServer) -> None:
    bad = json.loads(SUCCEEDED) | {"jobId": "7"}
    res = cs(
        "events", "publish", "deployment.succeeded", "--data", json.dumps(bad), env={"NATS_SERVERS": nats_server.url}
    )
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "cs: error: invalid deployment.succeeded payload: Expected `int`, got `str` - at `$.jobId`"
    )
    assert "Traceback" not in res.stderr
    assert cs("events", "pending", "--json").stdout.strip() == "[]"


def test_deployment_id_with_a_dot_is_rejected_before_publishing(cs: CsRunner, nats_server: NatsServer) -> None:
    end = json.dumps({"deploymentId": "a.b", "jobId": 1, "status": "failed"})
    res = cs("events", "publish", "build.log.end", "--data", end, env={"NATS_SERVERS": nats_server.url})
    assert res.returncode == 2
    assert "deploymentId 'a.b' cannot be used in a subject" in res.stderr


def test_scenario_2_nkey_auth_right_seed_delivers_wrong_seed_exits_77_without_echo(
    cs: CsRunner, tmp_path: Path
) -> None:
    seed = _new_user_seed()
    public = nkeys.from_seed(seed.encode()).public_key.decode()
    server = NatsServer(tmp_path / "nk", config=f'authorization {{ users: [ {{ nkey: "{public}" }} ] }}').start()
    try:
        env = {"NATS_SERVERS": server.url, "NATS_CLIENT_PRIVATE_KEY": f"  {seed}\n"}
        assert cs("nats", "setup", env=env).returncode == 0
        ok = publish_succeeded(cs, env)
        assert ok.returncode == 0, ok.stderr
        assert seed not in ok.stdout + ok.stderr

        wrong = _new_user_seed()
        res = publish_succeeded(cs, env | {"NATS_CLIENT_PRIVATE_KEY": wrong})
        assert res.returncode == 77, res.stderr
        assert "refused our credentials" in res.stderr
        assert wrong not in res.stdout + res.stderr
        assert wrong[2:12] not in res.stdout + res.stderr
        assert len(json.loads(cs("events", "pending", "--json").stdout)) == 1  # kept

        garbage = "SUNOTAREALSEEDATALLBUTSECRET"
        res = publish_succeeded(cs, env | {"NATS_CLIENT_PRIVATE_KEY": garbage})
        assert res.returncode == 2
        assert "NATS_CLIENT_PRIVATE_KEY is invalid" in res.stderr
        assert garbage not in res.stdout + res.stderr
    finally:
        server.kill()


def test_scenario_3_server_down_at_start_then_up_5s_later_delivers_exactly_once(cs: CsRunner, tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "late").start()
    _setup(cs, server.url)
    server.stop()
    proc = cs.popen(
        "events", "publish", "deployment.succeeded", "--data", SUCCEEDED, "--json", env={"NATS_SERVERS": server.url}
    )
    time.sleep(5)
    assert proc.poll() is None  # still trying
    server.start()
    try:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out)["seq"] == 1
        stored = read_stream(server.url)
        assert [m.json for m in stored] == [json.loads(SUCCEEDED)]
        assert cs("events", "pending", "--json").stdout.strip() == "[]"
    finally:
        server.kill()


def test_scenario_4_outage_longer_than_delivery_timeout_exits_75_then_flush_delivers_once(
    cs: CsRunner, tmp_path: Path
) -> None:
    server = NatsServer(tmp_path / "out").start()
    _setup(cs, server.url)
    server.stop()
    env = {"NATS_SERVERS": server.url, "CS_DELIVERY_TIMEOUT": "2s"}
    res = publish_succeeded(cs, env)
    assert res.returncode == 75
    assert "not delivered within 2s" in res.stderr
    assert "cs events flush" in res.stderr
    pending = json.loads(cs("events", "pending", "--json").stdout)
    assert [p["subject"] for p in pending] == ["deployment.succeeded"]
    msg_id = pending[0]["msg_id"]
    human = cs("events", "pending")
    assert msg_id in human.stdout and "1 pending event(s)" in human.stdout

    assert cs("events", "flush", "--timeout", "1s", env=env).returncode == 75  # still down
    server.start()
    try:
        res = cs("events", "flush", env=env)
        assert res.returncode == 0, res.stderr
        assert "delivered 1 event(s)" in res.stdout
        stored = read_stream(server.url)
        assert [m.msg_id for m in stored] == [msg_id]
        again = cs("events", "flush", env=env)
        assert again.returncode == 0
        assert len(read_stream(server.url)) == 1
    finally:
        server.kill()


def test_scenario_8_subject_without_stream_is_a_clear_error_and_the_event_is_kept(
    cs: CsRunner, nats_server: NatsServer
) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    res = publish_succeeded(cs, env)
    assert res.returncode == 75
    err = res.stderr.strip().splitlines()[-1]
    assert "no JetStream stream covers subject 'deployment.succeeded'" in err
    assert "cs nats setup" in err
    pending = json.loads(cs("events", "pending", "--json").stdout)
    assert len(pending) == 1
    assert "no JetStream stream covers" in pending[0]["last_error"]
    # once the stream exists, the kept event is delivered first, then the new one
    _setup(cs, nats_server.url)
    res = cs("events", "publish", "job.destroyed", "--data", '{"id": "svc", "reason": "delete"}', env=env)
    assert res.returncode == 0, res.stderr
    assert [m.subject for m in read_stream(nats_server.url)] == ["deployment.succeeded", "job.destroyed"]


def test_nats_setup_is_idempotent_and_check_diagnoses(cs: CsRunner, nats_server: NatsServer) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    bad = cs("nats", "check", env=env)
    assert bad.returncode == 1
    assert "no stream covers deployment.status.changed: run `cs nats setup`" in bad.stdout
    first = json.loads(cs("nats", "setup", "--json", env=env).stdout)
    assert first["created"] is True and first["duplicate_window"] == 86400.0
    second = json.loads(cs("nats", "setup", "--json", env=env).stdout)
    assert second["created"] is False and second["changed"] == []
    third = json.loads(cs("nats", "setup", "--json", "--duplicate-window", "2h", env=env).stdout)
    assert third["changed"] == ["duplicate_window"]
    good = cs("nats", "check", "--json", env=env)
    assert good.returncode == 0, good.stdout
    doc = json.loads(good.stdout)
    assert doc["ok"] is True and doc["rtt_ms"] > 0


def test_unreachable_server_for_admin_commands_is_one_line(cs: CsRunner) -> None:
    from tests.natsserver import free_port

    res = cs("nats", "check", env={"NATS_SERVERS": f"127.0.0.1:{free_port()}"})
    assert res.returncode == 75
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("cs: error: cannot connect to NATS")


def test_missing_nats_servers_is_a_usage_error(cs: CsRunner) -> None:
    res = publish_succeeded(cs, None)
    assert res.returncode == 2
    assert "NATS_SERVERS is not set" in res.stderr


def test_concurrent_publishers_share_one_outbox(cs: CsRunner, nats_server: NatsServer) -> None:
    _setup(cs, nats_server.url)
    results: list[int] = []

    def run() -> None:
        results.append(publish_succeeded(cs, {"NATS_SERVERS": nats_server.url}).returncode)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0, 0, 0, 0]
    stored = read_stream(nats_server.url)
    assert len(stored) == 4 and len({m.msg_id for m in stored}) == 4

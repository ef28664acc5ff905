"""Hostile settings and inputs (issue 11): each is a clear one-line error with the right exit code, never a
traceback or an "internal error", never a secret in the output, never a file others can read.

Every case runs the real ``cs`` in a subprocess; where a server is needed it is a real ``nats-server``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.recording_backend import closed_port_url
from tests.conftest import CS, CsResult, CsRunner
from tests.natsserver import NatsServer
from tests.streamread import read_stream

STATUS = '{"jobId": 7, "status": "IN_PROGRESS"}'
DESTROYED = '{"id": "svc-1", "reason": "delete"}'


def _one_clean_error(res: CsResult, code: int, *needles: str) -> str:
    """The command failed with ``code`` and one ``cs: error:`` line holding every needle."""
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("cs: error:")]
    assert len(errors) == 1, res.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def _down() -> str:
    return closed_port_url().replace("http://", "nats://")


# -- 7. invalid settings exit 2 at once, naming the variable --------------------------------------------------

BAD_SETTINGS = [
    ({"NATS_SERVERS": "nats://127.0.0.1:99999"}, "NATS_SERVERS", "1-65535"),
    ({"NATS_SERVERS": "nats://127.0.0.1:0"}, "NATS_SERVERS", "1-65535"),
    ({"NATS_SERVERS": "nats://127.0.0.1:4222,,nats://127.0.0.1:4223"}, "NATS_SERVERS", "empty"),
    ({"NATS_SERVERS": "nats://127.0.0.1:4222, "}, "NATS_SERVERS", "empty"),
    ({"NATS_SERVERS": "nats://[::1"}, "NATS_SERVERS", "not a valid URL"),
    ({"NATS_SERVERS": "nats://:4222"}, "NATS_SERVERS", "no host"),
    ({"NATS_SERVERS": "ftp://127.0.0.1:21"}, "NATS_SERVERS", "scheme"),
    ({"NATS_SERVERS": "nats://127.0.0.1:4222\x01"}, "NATS_SERVERS", "control"),
    ({"NATS_PUBLISH_TIMEOUT": "99999999999999999999h"}, "NATS_PUBLISH_TIMEOUT", "too long"),
    ({"CS_DELIVERY_TIMEOUT": "1e400"}, "CS_DELIVERY_TIMEOUT", "not a duration"),
    ({"NATS_FLUSH_TIMEOUT": "0"}, "NATS_FLUSH_TIMEOUT", "greater than zero"),
    ({"NATS_STREAM_PREFIX": "acme\x01x"}, "NATS_STREAM_PREFIX", "control"),
    ({"NATS_STREAM_PREFIX": "acme\x7f"}, "NATS_STREAM_PREFIX", "control"),
    ({"NATS_STREAM_PREFIX": "a" * 300}, "NATS_STREAM_PREFIX", "longer than"),
]


@pytest.mark.parametrize(("env", "variable", "why"), BAD_SETTINGS, ids=[f"{v}-{w}" for _, v, w in BAD_SETTINGS])
def test_invalid_setting_exits_2_at_once_naming_the_variable(
    cs: CsRunner, env: dict[str, str], variable: str, why: str
) -> None:
    full = {"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "30s"} | env
    commands = [
        ("events", "publish", "deployment.status.changed", "--data", STATUS),
        ("stream", "--deployment-id", "d1", "--job-id", "1", "--", "true"),
        ("events", "flush"),
        ("nats", "check"),
    ]
    # every command reads the settings the same way: all of them for the first cases, two for the rest
    for argv in commands if variable == "NATS_SERVERS" and "1-65535" in why else commands[:2]:
        res = cs(*argv, env=full, timeout=20)  # "at once": well before the 30 s delivery timeout
        _one_clean_error(res, 2, variable, why)
    assert cs("events", "pending", "--json").stdout.strip() == "[]"


def test_a_ca_file_that_is_not_pem_exits_2(cs: CsRunner, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"\x00\x01 this is not a certificate\n")
    env = {"NATS_SERVERS": "tls://127.0.0.1:4443", "NATS_CA_FILE": str(ca)}
    res = cs("events", "publish", "deployment.status.changed", "--data", STATUS, env=env, timeout=20)
    _one_clean_error(res, 2, "NATS_CA_FILE", "no PEM CA certificate")


# -- 5. credentials in NATS_SERVERS never printed ------------------------------------------------------------

USER = "CANARYuser91"
PASSWORD = "CANARYpass7c2e"
TOKEN = "CANARYtoken5d1f"


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(
        tmp_path / "pw",
        config=f'authorization {{ users = [ {{ user: "{USER}", password: "{PASSWORD}" }} ] }}',
    ).start()
    yield server
    server.kill()


def _no_credentials(*texts: str) -> None:
    for text in texts:
        for canary in (USER, PASSWORD, TOKEN, "CANARY"):
            assert canary not in text, text


def test_credentials_in_nats_servers_are_never_printed(
    cs: CsRunner, password_server: NatsServer, state_dir: Path
) -> None:
    port = password_server.port
    good = f"nats://{USER}:{PASSWORD}@127.0.0.1:{port}"
    wrong = f"nats://{USER}:{PASSWORD}x@127.0.0.1:{port}"
    down = _down().replace("nats://", f"nats://{TOKEN}@")
    down_userpass = _down().replace("nats://", f"nats://{USER}:{PASSWORD}@")
    quick = {"CS_DELIVERY_TIMEOUT": "1s"}
    outputs: list[CsResult] = []

    ok = cs("nats", "setup", env={"NATS_SERVERS": good})
    assert ok.returncode == 0, ok.stderr
    outputs.append(ok)
    res = cs("events", "publish", "deployment.status.changed", "--data", STATUS, env={"NATS_SERVERS": good})
    assert res.returncode == 0, res.stderr
    outputs.append(res)
    check = cs("nats", "check", env={"NATS_SERVERS": good})
    assert check.returncode == 0, check.stdout
    outputs.append(check)
    # refused credentials
    res = cs("events", "publish", "job.destroyed", "--data", DESTROYED, env={"NATS_SERVERS": wrong} | quick)
    assert res.returncode == 77, res.stderr
    outputs.append(res)
    outputs.append(cs("nats", "check", env={"NATS_SERVERS": wrong}))
    # unreachable, with a token and with user:pass in the URL: every command names the server, redacted
    for url in (down, down_userpass):
        env = {"NATS_SERVERS": url} | quick
        res = cs("events", "publish", "job.destroyed", "--data", DESTROYED, env=env)
        assert res.returncode == 75, res.stderr
        assert "nats://***@127.0.0.1:" in res.stderr
        outputs.append(res)
        res = cs("-v", "stream", "--deployment-id", "d1", "--job-id", "1", "--", "echo", "hi", env=env)
        assert res.returncode == 0
        assert "nats://***@127.0.0.1:" in res.stderr
        outputs.append(res)
        res = cs("-v", "events", "flush", "--timeout", "1s", env=env)
        assert res.returncode == 75
        outputs.append(res)
        res = cs("nats", "check", env=env)
        assert res.returncode == 75
        assert "nats://***@127.0.0.1:" in res.stderr
        outputs.append(res)
        outputs.append(cs("events", "pending", "--json", "--data"))
    # a bad setting that quotes the URL does not show the credentials either
    res = cs("events", "flush", env={"NATS_SERVERS": f"nats://{USER}:{PASSWORD}@127.0.0.1:99999"})
    _one_clean_error(res, 2, "nats://***@127.0.0.1:99999")
    outputs.append(res)
    _no_credentials(*(o.stdout + o.stderr for o in outputs))
    # nor anything cs wrote to disk
    for path in state_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes() and TOKEN.encode() not in path.read_bytes(), path


def test_url_credentials_are_redacted_from_the_build_log(cs: CsRunner, nats_server: NatsServer) -> None:
    """The child does not inherit them in NATS_SERVERS-derived output: cs redacts them from every line."""
    url = nats_server.url.replace("nats://", f"nats://{TOKEN}@")
    # the server has no auth: a token in the URL is accepted and ignored
    assert cs("nats", "setup", env={"NATS_SERVERS": url}).returncode == 0
    res = cs(
        "stream",
        "--deployment-id",
        "d-tok",
        "--job-id",
        "1",
        "--quiet",
        "--",
        "sh",
        "-c",
        'echo "url: $NATS_SERVERS"',
        env={"NATS_SERVERS": url},
    )
    assert res.returncode == 0, res.stderr
    contents = [m.json["content"] for m in read_stream(nats_server.url) if m.subject == "build.log.d-tok"]
    assert contents == [f"url: nats://***@127.0.0.1:{nats_server.port}\n"]


# -- 6. a private state dir: 0700, every file 0600, whatever the umask -------------------------------------


def test_state_dir_is_0700_and_every_file_0600_whatever_the_umask(tmp_path: Path, nats_server: NatsServer) -> None:
    from tests.conftest import base_env

    state = tmp_path / "fresh" / "state"
    env = base_env(state) | {"NATS_SERVERS": nats_server.url}
    subprocess.run([CS, "nats", "setup"], env=env, check=True, capture_output=True)
    done = tmp_path / "done"
    proc = subprocess.Popen(
        [  # umask 000: cs alone decides the modes
            "sh",
            "-c",
            'umask 000; exec "$@"',
            "sh",
            CS,
            "stream",
            "--deployment-id",
            "d-perm",
            "--job-id",
            "1",
            "--quiet",
            "--",
            "sh",
            "-c",
            f"echo hi; while [ ! -e {done} ]; do sleep 0.05; done",
        ],
        env=env | {"CS_DELIVERY_TIMEOUT": "1s", "NATS_SERVERS": _down()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # while cs runs, SQLite's -wal and -shm exist beside the database
        deadline = time.monotonic() + 30
        wanted = {"outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm"}
        while not wanted <= {p.name for p in state.rglob("*")} and time.monotonic() < deadline:
            time.sleep(0.05)
        for directory in (state, state / "owners"):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        files = [p for p in state.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        assert wanted <= names, names
        assert any(p.suffix == ".lock" for p in files), names
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        done.touch()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_files_left_readable_by_an_older_cs_are_made_private(cs: CsRunner, state_dir: Path) -> None:
    db = sqlite3.connect(state_dir / "outbox.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / f"outbox.sqlite3{suffix}"
        if path.exists():
            path.chmod(0o644)
    res = cs("events", "pending")
    # a foreign table: refused, but the files are private anyway
    _one_clean_error(res, 2, "not a cs outbox")
    db.close()
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / f"outbox.sqlite3{suffix}"
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- 8. bad input is never an internal error ------------------------------------------------------------------


def _garbage(state: Path) -> None:
    (state / "outbox.sqlite3").write_bytes(os.urandom(8192))


def _truncated(state: Path) -> None:
    db = sqlite3.connect(state / "outbox.sqlite3")
    with db:
        db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, owner TEXT, msg_id TEXT, kind TEXT, subject TEXT, "
            "deployment_id TEXT, data BLOB, created_at REAL, attempts INTEGER, last_error TEXT)"
        )
        db.executemany("INSERT INTO events (owner, data) VALUES ('x', ?)", [(os.urandom(3000),) for _ in range(200)])
    db.close()
    path = state / "outbox.sqlite3"
    path.write_bytes(path.read_bytes()[: 3 * 4096 + 100])


def _directory(state: Path) -> None:
    (state / "outbox.sqlite3").mkdir()


def _foreign(state: Path) -> None:
    db = sqlite3.connect(state / "outbox.sqlite3")
    with db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)")
    db.close()


@pytest.mark.parametrize("damage", [_garbage, _truncated, _directory, _foreign], ids=lambda f: f.__name__[1:])
def test_an_unusable_outbox_is_a_clear_error_naming_it(
    cs: CsRunner, state_dir: Path, damage: object, nats_server: NatsServer
) -> None:
    damage(state_dir)  # type: ignore[operator]
    path = str(state_dir / "outbox.sqlite3")
    env = {"NATS_SERVERS": nats_server.url, "CS_DELIVERY_TIMEOUT": "2s"}
    for argv in (
        ("events", "pending"),
        ("events", "flush"),
        ("events", "publish", "deployment.status.changed", "--data", STATUS),
        ("stream", "--deployment-id", "d1", "--job-id", "1", "--", "true"),
    ):
        res = cs(*argv, env=env)
        _one_clean_error(res, 2, path)


def test_a_state_dir_that_is_a_file_or_read_only_is_a_clear_error(cs: CsRunner, tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    res = cs("events", "pending", env={"CS_STATE_DIR": str(a_file)})
    _one_clean_error(res, 2, "CS_STATE_DIR", str(a_file), "not a directory")
    res = cs("events", "pending", env={"CS_STATE_DIR": str(a_file / "sub")})
    _one_clean_error(res, 2, "CS_STATE_DIR")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(read_only)], check=False)
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("cannot mount a read-only tmpfs")
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        res = cs("events", "pending", env={"CS_STATE_DIR": str(read_only / "state")})
        _one_clean_error(res, 2, "CS_STATE_DIR")
        res = cs("events", "pending", env={"CS_STATE_DIR": str(read_only)})
        _one_clean_error(res, 2, "CS_STATE_DIR")
    finally:
        subprocess.run(["umount", "-l", str(read_only)], check=False)


def _run_bytes(argv: list[bytes], env: dict[str, str], stdin: bytes = b"") -> CsResult:
    proc = subprocess.run([CS.encode(), *argv], env=env, input=stdin, capture_output=True, timeout=60)
    return CsResult(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def test_non_utf8_arguments_and_files_are_bad_input(cs: CsRunner, tmp_path: Path) -> None:
    env = cs.env | {"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "1s"}
    bad_line = b'{"deploymentId": "d\xff", "jobId": 1, "status": "failed"}'
    res = _run_bytes([b"events", b"publish", b"build.log.end", b"--data", bad_line], env)
    _one_clean_error(res, 2, "UTF-8")
    res = _run_bytes([b"stream", b"--deployment-id", b"d\xff", b"--job-id", b"1", b"--", b"true"], env)
    _one_clean_error(res, 2, "not valid UTF-8")
    res = _run_bytes(
        [b"stream", b"--deployment-id", b"d1", b"--service-id", b"s\xfe", b"--job-id", b"1", b"--", b"true"], env
    )
    _one_clean_error(res, 2, "serviceId", "not valid UTF-8")
    res = _run_bytes(
        [b"events", b"publish", b"deployment.status.changed", b"--deployment", b"\xff\xfe", b"--data", STATUS.encode()],
        env,
    )
    _one_clean_error(res, 2, "not valid UTF-8")
    res = _run_bytes([b"events", b"tail", b"--deployment", b"x\xff", b"--no-follow"], env)
    _one_clean_error(res, 2)
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(b'{"kind": "job.destroyed", "data": {"id": "s\xff", "reason": "delete"}}\n')
    res = cs("events", "publish", "--batch", str(batch), env=env)
    _one_clean_error(res, 2, "batch.jsonl:1", "UTF-8")
    params = tmp_path / "params.json"
    params.write_bytes(b'{"jobId": "\xff"}')
    res = cs("dispatch", "--task", "deploy-image", "--params-file", str(params), env=env)
    _one_clean_error(res, 2, "params: not valid JSON")  # the wording depends on msgspec (issue 8)
    # and nothing was journaled
    assert cs("events", "pending", "--json").stdout.strip() == "[]"


DEEP = "[" * 100_000 + "]" * 100_000  # files and stdin
DEEP_ARG = "[" * 40_000 + "]" * 40_000  # an argument or variable is at most 128 KiB (MAX_ARG_STRLEN)


def test_json_nested_100k_deep_is_bad_input_everywhere(cs: CsRunner, tmp_path: Path) -> None:
    env = {"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "1s"}
    deep_payload = '{"id": "s", "reason": ' + DEEP_ARG + "}"
    res = cs("events", "publish", "job.destroyed", "--data", deep_payload, env=env)
    _one_clean_error(res, 2)
    batch = tmp_path / "batch.jsonl"
    batch.write_text('{"kind": "job.destroyed", "data": ' + DEEP + "}\n")
    res = cs("events", "publish", "--batch", str(batch), env=env)
    _one_clean_error(res, 2, "nested too deeply")
    params = tmp_path / "params.json"
    params.write_text(DEEP)
    res = cs("dispatch", "--task", "deploy-image", "--params-file", str(params), env=env)
    _one_clean_error(res, 2, "nested too deeply")
    meta = {"NOMAD_META_TASK": "deploy-image", "NOMAD_META_PARAMS": base64.b64encode(DEEP_ARG.encode()).decode()}
    res = cs("dispatch", env=env | meta)
    _one_clean_error(res, 2, "nested too deeply")


# -- 9. subjects and jobId ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["d\x00x", "d\x01x", "d\x7fx", "a" * 5000, "d.x", "d*", "d>", "d x"])
def test_ids_that_cannot_be_a_subject_token_are_refused_everywhere(cs: CsRunner, bad: str) -> None:
    if "\x00" in bad:  # argv cannot carry NUL: the payload can
        data = json.dumps({"deploymentId": bad, "jobId": 1, "status": "failed"})
        res = cs("events", "publish", "build.log.end", "--data", data, env={"NATS_SERVERS": _down()})
        _one_clean_error(res, 2, "deploymentId")
        return
    for argv in (
        (
            "events",
            "publish",
            "build.log.end",
            "--data",
            json.dumps({"deploymentId": bad, "jobId": 1, "status": "failed"}),
        ),
        ("events", "publish", "deployment.status.changed", "--deployment", bad, "--data", STATUS),
        ("stream", "--deployment-id", bad, "--job-id", "1", "--", "true"),
    ):
        res = cs(*argv, env={"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "1s"})
        _one_clean_error(res, 2)
    assert cs("events", "pending", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize("job_id", [2**63, -(2**63) - 1, 10**30])
def test_job_id_stays_within_int64(cs: CsRunner, job_id: int) -> None:
    env = {"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "1s"}
    res = cs(
        "events",
        "publish",
        "deployment.status.changed",
        "--data",
        f'{{"jobId": {job_id}, "status": "FAILED"}}',
        env=env,
    )
    _one_clean_error(res, 2, "jobId")
    res = cs("stream", "--deployment-id", "d1", "--job-id", str(job_id), "--", "true", env=env)
    _one_clean_error(res, 2, "jobId")
    assert cs("events", "pending", "--json").stdout.strip() == "[]"


# -- 1. refused at the door ----------------------------------------------------------------------------------


def test_events_that_can_never_be_delivered_are_refused_at_the_door(cs: CsRunner, tmp_path: Path) -> None:
    env = {"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "1s"}
    long_ids = {
        "deploymentId": "d",
        "jobId": 1,
        "type": "image",
        "serviceId": "s" * 257,
        "teamId": "",
        "userId": "",
        "ownerId": "",
    }
    res = cs("events", "publish", "deployment.succeeded", "--data", json.dumps(long_ids), env=env)
    _one_clean_error(res, 2, "serviceId")
    huge = {
        "deploymentId": "d",
        "jobId": 1,
        "serviceId": "",
        "ownerId": "",
        "logOutput": "stdout",
        "content": "x" * (1024 * 1024),
        "timestamp": 1,
        "sequence": 1,
        "phase": "build",
    }
    batch = tmp_path / "huge.jsonl"
    batch.write_text(json.dumps({"kind": "build.log", "data": huge}) + "\n")
    res = cs("events", "publish", "--batch", str(batch), env=env)
    _one_clean_error(res, 2, "exceeds the server's max_payload (1048576 bytes)")
    res = cs("stream", "--deployment-id", "d1", "--job-id", "1", "--phase", "p" * 65, "--", "true", env=env)
    _one_clean_error(res, 2, "--phase")
    assert cs("events", "pending", "--json").stdout.strip() == "[]"


# -- 2. exit codes tell the truth ------------------------------------------------------------------------------


def test_publish_held_behind_an_undelivered_event_of_its_deployment_is_not_0(
    cs: CsRunner, nats_server: NatsServer
) -> None:
    """A stream that stores the lifecycle subjects but not build.log.<id>: a log line of dep-h stays in the
    outbox (no stream); the next publish of dep-h adopts it, and its own event is held behind it."""
    import asyncio

    import nats

    async def make_stream() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().add_stream(name="PARTIAL", subjects=["deployment.>", "job.destroyed"])
        await nc.close()

    asyncio.run(make_stream())
    env = {"NATS_SERVERS": nats_server.url, "CS_DELIVERY_TIMEOUT": "3s"}
    line = {
        "deploymentId": "dep-h",
        "jobId": 1,
        "serviceId": "",
        "ownerId": "",
        "logOutput": "stdout",
        "content": "x\n",
        "timestamp": 1,
        "sequence": 1,
        "phase": "build",
    }
    res = cs("events", "publish", "build.log", "--data", json.dumps(line), env=env)
    _one_clean_error(res, 75, "no JetStream stream covers subject 'build.log.dep-h'")
    result = {
        "jobId": 1,
        "type": "image",
        "deploymentId": "dep-h",
        "serviceId": "",
        "teamId": "",
        "userId": "",
        "ownerId": "",
    }
    res = cs("events", "publish", "deployment.succeeded", "--data", json.dumps(result), env=env)
    _one_clean_error(res, 75, "held back behind an earlier event of deployment dep-h", "kept in")
    assert res.stdout == ""
    pending = json.loads(cs("events", "pending", "--json", "--data").stdout)
    assert [(p["subject"], p["state"]) for p in pending] == [
        ("build.log.dep-h", "waiting"),
        ("deployment.succeeded", "waiting"),
    ]
    assert json.loads(str(pending[1]["data"]))["deploymentId"] == "dep-h"
    assert "no JetStream stream covers" in str(pending[0]["last_error"])
    # another deployment is not held by dep-h
    other = result | {"deploymentId": "dep-other"}
    res = cs("events", "publish", "deployment.succeeded", "--data", json.dumps(other), env=env)
    assert res.returncode == 0, res.stderr  # 0: every event of *this* command was acknowledged
    assert "delivered deployment.succeeded -> stream PARTIAL seq 1" in res.stdout
    stored = read_stream(nats_server.url, "PARTIAL")
    assert [m.json["deploymentId"] for m in stored] == ["dep-other"]
    assert len(json.loads(cs("events", "pending", "--json").stdout)) == 2  # dep-h's are still kept


# -- 12. signals: one exit code convention ---------------------------------------------------------------


def test_sigterm_ends_a_plain_command_with_128_plus_n(cs: CsRunner) -> None:
    import signal
    import time

    env = {"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "1s"}
    assert cs("events", "publish", "job.destroyed", "--data", DESTROYED, env=env).returncode == 75
    proc = cs.popen("events", "flush", "--timeout", "60s", env={"NATS_SERVERS": _down()})
    time.sleep(2.0)  # flushing against a server that is down
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert len(json.loads(cs("events", "pending", "--json").stdout)) == 1  # still kept


def test_pending_shows_payload_and_state(cs: CsRunner) -> None:
    env = {"NATS_SERVERS": _down(), "CS_DELIVERY_TIMEOUT": "1s"}
    res = cs("events", "publish", "job.destroyed", "--data", DESTROYED, env=env)
    assert res.returncode == 75
    text = cs("events", "pending", "--data")
    assert text.returncode == 0
    assert "[waiting]" in text.stdout
    assert 'data: {"id":"svc-1","reason":"delete"}' in text.stdout
    plain = cs("events", "pending")
    assert "data:" not in plain.stdout


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


# -- 13. a slow connect is not an unreachable server ------------------------------------------------------


class _SlowProxy:
    """A TCP proxy in front of a real server that holds the server's first bytes (INFO) for ``delay``
    seconds: a server slow to answer, as on a loaded machine."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        import socket
        import threading

        self.delay = delay
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(upstream, client, self.delay), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()

    @staticmethod
    def _pump(src: object, dst: object, delay: float) -> None:
        import socket
        import time as _time

        assert isinstance(src, socket.socket) and isinstance(dst, socket.socket)
        first = True
        try:
            while data := src.recv(65536):
                if first and delay:
                    _time.sleep(delay)
                first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def test_a_slow_server_is_not_reported_unreachable_and_a_refusing_one_is(cs: CsRunner, nats_server: NatsServer) -> None:
    assert cs("nats", "setup", env={"NATS_SERVERS": nats_server.url}).returncode == 0
    proxy = _SlowProxy(nats_server.port, delay=3.0)  # longer than the 2 s the first attempt used to get
    try:
        env = {"NATS_SERVERS": f"nats://127.0.0.1:{proxy.port}"}
        res = cs("events", "publish", "job.destroyed", "--data", DESTROYED, env=env)
        assert res.returncode == 0, res.stderr
        assert "cannot reach" not in res.stderr and "slow" not in res.stderr, res.stderr
        res = cs("stream", "--deployment-id", "d-slow", "--job-id", "1", "--quiet", "--", "echo", "hi", env=env)
        assert res.returncode == 0, res.stderr
        assert "cannot reach" not in res.stderr, res.stderr
    finally:
        proxy.close()
    assert [m.subject for m in read_stream(nats_server.url)] == ["job.destroyed", "build.log.d-slow"]
    # a port that refuses connections: that is said at once, with the reason
    down = _down()
    res = cs(
        "stream",
        "--deployment-id",
        "d-down",
        "--job-id",
        "1",
        "--quiet",
        "--",
        "echo",
        "hi",
        env={"NATS_SERVERS": down, "CS_DELIVERY_TIMEOUT": "2s"},
    )
    assert res.returncode == 0
    assert f"cannot reach NATS at {down} yet (ConnectionRefusedError" in res.stderr, res.stderr


# -- 3. cs stream never produces an event it cannot deliver ---------------------------------------------


def test_cs_stream_splits_on_the_real_envelope_with_the_longest_ids_on_a_small_server(
    cs: CsRunner, tmp_path: Path
) -> None:
    limit = 4096
    server = NatsServer(tmp_path / "small", config=f"max_payload: {limit}").start()
    try:
        env = {"NATS_SERVERS": server.url}
        assert cs("nats", "setup", env=env).returncode == 0
        # the widest envelope: ids at their bounds, made of characters JSON escapes (2 and 6 bytes each)
        dep, service, owner, phase = "d" * 256, '"' * 256, "\x01" * 256, "p" * 64
        line = "".join(f"{i:04d}é" + "\x01" * 30 for i in range(300))  # mostly 6-byte \u0001 escapes
        code = f"import time; time.sleep(1); print({line!r})"
        res = cs(
            "stream",
            "--deployment-id",
            dep,
            "--job-id",
            str(2**63 - 1),
            "--service-id",
            service,
            "--owner-id",
            owner,
            "--phase",
            phase,
            "--end",
            "--quiet",
            "--",
            sys.executable,
            "-c",
            code,
            env=env,
        )
        assert res.returncode == 0, res.stderr
        assert "set aside" not in res.stderr, res.stderr
        assert json.loads(cs("events", "pending", "--json").stdout) == []
        stored = [m for m in read_stream(server.url) if m.subject == f"build.log.{dep}"]
        assert len(stored) > 10
        assert all(len(m.data) <= limit for m in stored)
        payloads = sorted((m.json for m in stored), key=lambda p: p["sequence"])
        assert "".join(p["content"] for p in payloads) == line + "\n"
        assert {(p["serviceId"], p["ownerId"], p["phase"], p["jobId"]) for p in payloads} == {
            (service, owner, phase, 2**63 - 1)
        }
    finally:
        server.kill()


def test_durations_that_overflow_are_refused_in_flags_too(cs: CsRunner) -> None:
    env = {"NATS_SERVERS": _down()}
    _one_clean_error(cs("nats", "setup", "--max-age", "99999999999999d", env=env), 2, "--max-age")
    _one_clean_error(cs("nats", "setup", "--duplicate-window", "9999999999h", env=env), 2, "--duplicate-window")
    _one_clean_error(cs("events", "flush", "--timeout", "99999999999999999s", env=env), 2, "--timeout", "too long")

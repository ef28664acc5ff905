"""The build log against a real server: sequencing, splitting, redaction, the end barrier."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from cloudstation.events import contract as c
from cloudstation.events.buildlog import BuildLog, BuildLogClosedError, LogLine
from cloudstation.events.identity import DeploymentRef
from cloudstation.events.jetstream import StreamSpec, setup_stream
from cloudstation.events.outbox import Outbox
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import settings_from_env
from cloudstation.plugins.childlog import run_into_log
from cloudstation.redaction import Redactor
from tests.natsserver import NatsServer
from tests.streamread import StoredMsg, read_stream_async

IDENT = DeploymentRef(deployment_id="dep-u", job_id=11, service_id="svc", owner_id="own")


async def _stream_setup(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        await setup_stream(nc.jetstream(), StreamSpec("CLOUDSTATION", c.stream_subjects("")))
    finally:
        await nc.close()


async def _with_log(
    server: NatsServer, state: Path, body: object, *, redactor: Redactor | None = None, max_payload: str = ""
) -> tuple[list[StoredMsg], list[LogLine]]:
    await _stream_setup(server.url)
    settings = settings_from_env({"NATS_SERVERS": server.url})
    assert settings is not None
    shown: list[LogLine] = []
    with Outbox(state) as outbox:
        pub = Publisher(settings, outbox)
        await pub.start()
        for _ in range(500):  # connected: the server's max_payload is known
            if pub.max_payload is not None:
                break
            await asyncio.sleep(0.01)
        log = BuildLog(pub, IDENT, redactor=redactor, echo=shown.append, phase="build")
        assert callable(body)
        await body(log)
        report = await pub.close(timeout=30)
        assert report.complete, report
    return await read_stream_async(server.url), shown


def _logs(stored: list[StoredMsg]) -> list[dict[str, object]]:
    return [m.json for m in stored if m.subject == "build.log.dep-u"]


def test_one_sequence_across_stdout_and_stderr_and_cs_messages(nats_server: NatsServer, tmp_path: Path) -> None:
    async def body(log: BuildLog) -> None:
        log.emit("cloning into /src", phase="clone")
        rc = await run_into_log(
            log, [sys.executable, "-c", "import sys; print('out1'); sys.stderr.write('err1\\n'); print('out2')"]
        )
        assert rc == 0
        log.emit("done\nreally done")
        log.end("success")

    stored, shown = asyncio.run(_with_log(nats_server, tmp_path / "s", body))
    logs = _logs(stored)
    assert [p["sequence"] for p in logs] == [1, 2, 3, 4, 5, 6]
    assert logs[0] == {
        "deploymentId": "dep-u",
        "jobId": 11,
        "serviceId": "svc",
        "ownerId": "own",
        "logOutput": "stdout",
        "content": "cloning into /src\n",
        "timestamp": logs[0]["timestamp"],
        "sequence": 1,
        "phase": "clone",
    }
    assert sorted(str(p["content"]) for p in logs[1:4]) == ["err1\n", "out1\n", "out2\n"]
    assert [p["logOutput"] for p in logs if p["content"] == "err1\n"] == ["stderr"]
    assert [p["content"] for p in logs[4:]] == ["done\n", "really done\n"]
    assert stored[-1].subject == "build.log.end.dep-u"
    assert [line.sequence for line in shown] == [1, 2, 3, 4, 5, 6]
    timestamps = [int(str(p["timestamp"])) for p in logs]
    assert timestamps == sorted(timestamps) and timestamps[0] > 1_700_000_000_000


def test_scenario_3_a_line_after_the_end_is_rejected_loudly_and_never_published(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def body(log: BuildLog) -> None:
        log.emit("last real line")
        log.end("failed")
        with pytest.raises(BuildLogClosedError, match="already ended: line rejected"):
            log.emit("too late")
        with pytest.raises(BuildLogClosedError):
            await run_into_log(log, ["echo", "also too late"])
        with pytest.raises(BuildLogClosedError):
            log.end("success")

    stored, _ = asyncio.run(_with_log(nats_server, tmp_path / "s", body))
    assert [m.subject for m in stored] == ["build.log.dep-u", "build.log.end.dep-u"]
    assert stored[1].json["status"] == "failed"
    assert all(b"too late" not in m.data for m in stored)


def test_long_line_splits_under_max_payload_without_cutting_a_secret(tmp_path: Path) -> None:
    secret = "S3CR3T-" + "k" * 40
    server = NatsServer(tmp_path / "n", config="max_payload: 8192").start()
    try:
        line = ("a" * 1000 + secret) * 40 + "\n"

        async def body(log: BuildLog) -> None:
            await run_into_log(log, [sys.executable, "-c", f"import sys; sys.stdout.write({line!r})"])
            log.end("success")

        stored, _ = asyncio.run(_with_log(server, tmp_path / "s", body, redactor=Redactor([secret])))
    finally:
        server.kill()
    logs = _logs(stored)
    assert len(logs) > 5
    assert all(len(m.data) <= 8192 for m in stored)
    assert "".join(str(p["content"]) for p in logs) == line.replace(secret, "***")
    assert all(secret[:10] not in m.data.decode() for m in stored)


def test_trailing_partial_line_and_invalid_utf8(nats_server: NatsServer, tmp_path: Path) -> None:
    async def body(log: BuildLog) -> None:
        code = (
            "import os; os.write(1, b'ok\\n\\xff\\xfebad\\n\\xe2\\x82'); "
            "os.write(1, b'\\xac euro'); os.write(2, b'tail')"
        )
        assert await run_into_log(log, [sys.executable, "-c", code]) == 0
        log.end("success")

    stored, _ = asyncio.run(_with_log(nats_server, tmp_path / "s", body))
    by_output: dict[str, list[str]] = {"stdout": [], "stderr": []}
    for p in _logs(stored):
        by_output[str(p["logOutput"])].append(str(p["content"]))
    assert by_output["stdout"] == ["ok\n", "\ufffd\ufffdbad\n", "€ euro"]
    assert by_output["stderr"] == ["tail"]


def test_cancelling_run_stops_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    async def scenario() -> None:
        log = BuildLog(None, IDENT)
        code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
        task = asyncio.create_task(run_into_log(log, [sys.executable, "-c", code]))
        while not pid_file.exists():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())  # the child would sleep for 60 s: it is gone because the cancel killed it
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_missing_executable_raises_file_not_found() -> None:
    async def scenario() -> None:
        await run_into_log(BuildLog(None, IDENT), ["definitely-not-a-tool-42"])

    with pytest.raises(FileNotFoundError):
        asyncio.run(scenario())

"""On the machine's NATS 2.9 (127.0.0.1:4222, no fast ingest): setup leaves ``allow_batched`` alone,
check names the pipelined path and why, and log lines still arrive exactly once, in order.

Uses :mod:`tests.events.test_server_compat`'s fixture: a unique prefix and stream, removed after;
skipped when no server listens on 4222 (never started by the tests).
"""

from __future__ import annotations

import json

from tests.conftest import CsRunner
from tests.events.test_server_compat import OLD_SERVER, prefix  # noqa: F401 - the fixture
from tests.streamread import read_stream


def test_old_server_keeps_the_pipelined_path(cs: CsRunner, prefix: str) -> None:  # noqa: F811
    env = {"NATS_SERVERS": OLD_SERVER, "NATS_STREAM_PREFIX": prefix}
    res = cs("nats", "setup", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["allow_batched"] is False
    check = cs("nats", "check", env=env)
    assert check.returncode == 0, check.stdout
    assert "log lines: pipelined publishes (server 2." in check.stdout and "needs 2.14+" in check.stdout
    script = "import sys\nfor i in range(2500): sys.stdout.write(f'line {i}\\n')\n"
    res = cs(
        "stream", "--deployment-id", "old", "--job-id", "1", "--end", "--quiet", "--", "python3", "-c", script, env=env
    )
    assert res.returncode == 0, res.stderr
    stored = read_stream(OLD_SERVER, f"{prefix}_cloudstation")
    lines = [json.loads(m.data)["content"] for m in stored if m.subject == f"{prefix}.build.log.old"]
    assert lines == [f"line {i}\n" for i in range(2500)]
    assert len({m.msg_id for m in stored}) == len(stored) == 2501

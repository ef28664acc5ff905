"""The same delivery against the machine's older NATS 2.9 server (127.0.0.1:4222), when it runs.

We never start anything on 4222; this only talks to the server the machine already runs, under a
unique prefix and stream, removed afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator

import nats
import pytest

from tests.conftest import CsRunner
from tests.streamread import read_stream

OLD_SERVER = "nats://127.0.0.1:4222"


def _reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.fixture
def prefix() -> Iterator[str]:
    if not _reachable():
        pytest.skip("no NATS server on 127.0.0.1:4222 on this machine")
    name = f"cstest{os.urandom(4).hex()}"
    yield name

    async def drop() -> None:
        nc = await nats.connect(OLD_SERVER)
        try:
            await nc.jetstream().delete_stream(f"{name}_cloudstation")
        except Exception:
            pass
        finally:
            await nc.close()

    asyncio.run(drop())


def test_publish_stream_and_tail_on_the_older_server(cs: CsRunner, prefix: str) -> None:
    env = {"NATS_SERVERS": OLD_SERVER, "NATS_STREAM_PREFIX": prefix}
    assert cs("nats", "setup", env=env).returncode == 0
    res = cs("events", "publish", "job.destroyed", "--data", '{"id": "svc", "reason": "delete"}', "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["subject"] == f"{prefix}.job.destroyed"
    res = cs("stream", "--deployment-id", "old", "--job-id", "1", "--end", "--quiet", "--", "echo", "hi", env=env)
    assert res.returncode == 0, res.stderr
    stored = read_stream(OLD_SERVER, f"{prefix}_cloudstation")
    assert [m.subject for m in stored] == [
        f"{prefix}.job.destroyed",
        f"{prefix}.build.log.old",
        f"{prefix}.build.log.end.old",
    ]
    again = cs("events", "publish", "job.destroyed", "--data", '{"id": "svc", "reason": "delete"}', env=env)
    assert again.returncode == 0
    check = cs("nats", "check", env=env)
    assert check.returncode == 0, check.stdout

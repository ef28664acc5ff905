"""Fast-ingest batches (ADR-50) for log lines: the wire protocol really used, exactly-once and order,
a resend of already-stored lines counted as acknowledged, the fallback to pipelined publishes, and
``cs nats setup`` / ``cs nats check`` on a server that has fast ingest (the packaged 2.15).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest

from cloudstation.errors import ConfigError
from cloudstation.events import contract as c
from cloudstation.events.fastbatch import server_supports, which_path
from cloudstation.events.jetstream import StreamSpec, setup_stream
from cloudstation.events.outbox import Outbox
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import settings_from_env
from tests.chaos.test_delivery_chaos import assert_exactly_once_in_order, deployment_events, interleave
from tests.conftest import CsRunner
from tests.events.samples import log_lines
from tests.natsserver import NatsServer
from tests.streamread import read_stream_async


async def make_stream(url: str, *, allow_batched: bool | None = None) -> bool:
    nc = await nats.connect(url)
    try:
        res = await setup_stream(
            nc.jetstream(), StreamSpec("CLOUDSTATION", c.stream_subjects(""), allow_batched=allow_batched)
        )
        info = await nc.jetstream().stream_info("CLOUDSTATION")
        assert bool(info.config.allow_batched) == res.allow_batched
        return res.allow_batched
    finally:
        await nc.close()


async def deliver(url: str, state: Path, events: list[c.Event], *, env: dict[str, str] | None = None) -> Publisher:
    """Journal and deliver ``events`` in chunks; returns the closed Publisher (report checked)."""
    settings = settings_from_env({"NATS_SERVERS": url, "NATS_PUBLISH_TIMEOUT": "2s", **(env or {})})
    assert settings is not None
    with Outbox(state) as outbox:
        pub = Publisher(settings, outbox)
        await pub.start()
        for i in range(0, len(events), 300):
            pub.submit(events[i : i + 300])
            await asyncio.sleep(0)
        assert await pub.wait(timeout=60), f"{pub.undelivered} undelivered"
        report = await pub.close()
        assert report.complete and report.errors == [], report
        assert outbox.count(mine=False) == 0
    return pub


class WireTap:
    """A core subscription on every log subject: which reply subject did each message carry?"""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self._nc: Any = None

    async def start(self, url: str) -> WireTap:
        self._nc = await nats.connect(url)

        async def cb(msg: Any) -> None:
            self.replies.append(msg.reply)

        await self._nc.subscribe("build.log.>", cb=cb)
        await self._nc.flush()
        return self

    async def stop(self) -> None:
        await self._nc.flush()
        await asyncio.sleep(0.2)
        await self._nc.close()

    @property
    def fast(self) -> int:
        return sum(1 for r in self.replies if r.endswith(".$FI"))


def test_log_lines_go_out_as_fast_batches_exactly_once_and_in_order(nats_server: NatsServer, tmp_path: Path) -> None:
    sent = interleave([deployment_events(f"dep-{d}", d, 700) for d in range(3)], chunk=90)

    async def scenario() -> None:
        assert await make_stream(nats_server.url) is True  # auto: the 2.15 server has fast ingest
        tap = await WireTap().start(nats_server.url)
        pub = await deliver(nats_server.url, tmp_path / "state", sent)
        await tap.stop()
        assert pub._fast is not None and pub._fast.enabled and pub._fast.batches >= 3
        logs = sum(1 for e in sent if e.kind is c.EventKind.BUILD_LOG)
        # every line went out with a fast-ingest reply subject (plus one end marker per batch)
        assert tap.fast == logs + pub._fast.batches
        assert pub.delivered == len(sent)
        stored = await read_stream_async(nats_server.url)
        assert_exactly_once_in_order(stored, sent)
        by_id = {e.msg_id: e for e in sent}
        for m in stored:  # the HPUB frames built by fastbatch carry exactly the event's headers
            assert m.headers == by_id[m.msg_id].headers() and m.subject == by_id[m.msg_id].subject

    asyncio.run(scenario())


@pytest.mark.parametrize("n", [1, 7, 1500])
def test_a_resent_batch_of_stored_lines_counts_as_acknowledged_and_stores_nothing_twice(
    nats_server: NatsServer, tmp_path: Path, n: int
) -> None:
    """A crash after the publish but before the outbox forgot the rows: the next process resends
    lines that are all stored already (the final PubAck has seq 0), then half-stored ones."""
    first = log_lines("dup", n)
    more = log_lines("dup", n, start=n + 1)

    async def scenario() -> None:
        await make_stream(nats_server.url)
        await deliver(nats_server.url, tmp_path / "a", first)
        again = await deliver(nats_server.url, tmp_path / "b", first)  # same msg ids: all duplicates
        assert again._fast is not None and again._fast.enabled and again._fast.batches >= 1
        assert again.delivered == n
        mixed = await deliver(nats_server.url, tmp_path / "c", first[n // 2 :] + more)
        assert mixed.delivered == n - n // 2 + n
        stored = await read_stream_async(nats_server.url)
        assert [m.msg_id for m in stored] == [e.msg_id for e in first + more]

    asyncio.run(scenario())


def test_a_stream_without_allow_batched_falls_back_to_pipelined_publishes(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    sent = interleave([deployment_events(f"dep-{d}", d, 400) for d in range(2)], chunk=50)

    async def scenario() -> None:
        assert await make_stream(nats_server.url, allow_batched=False) is False
        tap = await WireTap().start(nats_server.url)
        pub = await deliver(nats_server.url, tmp_path / "state", sent)
        await tap.stop()
        assert pub._fast is not None and not pub._fast.enabled  # refused once (10205), then one by one
        assert tap.fast == 1
        assert_exactly_once_in_order(await read_stream_async(nats_server.url), sent)

    asyncio.run(scenario())


def test_cs_fast_ingest_off_keeps_the_pipelined_path(nats_server: NatsServer, tmp_path: Path) -> None:
    sent = log_lines("off", 500)

    async def scenario() -> None:
        await make_stream(nats_server.url)
        tap = await WireTap().start(nats_server.url)
        pub = await deliver(nats_server.url, tmp_path / "state", sent, env={"CS_FAST_INGEST": "off"})
        await tap.stop()
        assert pub._fast is None and tap.fast == 0
        assert [m.msg_id for m in await read_stream_async(nats_server.url)] == [e.msg_id for e in sent]

    asyncio.run(scenario())
    with pytest.raises(ConfigError, match="CS_FAST_INGEST: 'sometimes' is not one of auto, off"):
        settings_from_env({"NATS_SERVERS": nats_server.url, "CS_FAST_INGEST": "sometimes"})


def test_cs_stream_end_to_end_uses_fast_batches(cs: CsRunner, nats_server: NatsServer) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    script = "import sys\nfor i in range(3000): sys.stdout.write(f'line {i}\\n')\n"

    async def run() -> WireTap:
        tap = await WireTap().start(nats_server.url)
        res = await asyncio.to_thread(
            cs, "stream", "--deployment-id", "e2e", "--job-id", "3", "--end", "--quiet", "--",
            "python3", "-c", script, env=env,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        await tap.stop()
        return tap

    tap = asyncio.run(run())
    assert tap.fast >= 3000
    stored = asyncio.run(read_stream_async(nats_server.url))
    lines = [json.loads(m.data)["content"] for m in stored if m.subject == "build.log.e2e"]
    assert lines == [f"line {i}\n" for i in range(3000)]
    assert [m.subject for m in stored][-1] == "build.log.end.e2e"


def test_nats_setup_turns_allow_batched_on_and_check_names_the_path(cs: CsRunner, nats_server: NatsServer) -> None:
    env = {"NATS_SERVERS": nats_server.url}
    asyncio.run(make_stream(nats_server.url, allow_batched=False))  # an existing stream from before
    check = cs("nats", "check", env=env)
    assert check.returncode == 0, check.stdout
    assert "log lines: pipelined publishes (stream CLOUDSTATION has allow_batched off" in check.stdout

    res = cs("nats", "setup", "--json", env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["allow_batched"] is True and doc["changed"] == ["allow_batched"] and doc["created"] is False
    res = cs("nats", "setup", env=env)
    assert "unchanged" in res.stdout and "fast-ingest batches allowed" in res.stdout

    check = cs("nats", "check", "--json", env=env)
    texts = [line["text"] for line in json.loads(check.stdout)["checks"]]
    assert any(t.startswith("log lines: fast-ingest batches (server 2.") for t in texts), texts
    off = cs("nats", "check", env={**env, "CS_FAST_INGEST": "off"})
    assert "log lines: pipelined publishes (fast-ingest batches turned off by CS_FAST_INGEST=off)" in off.stdout


def test_which_path_and_server_versions() -> None:
    assert server_supports("2.14.0") and server_supports("2.15.1") and server_supports("3.0.0")
    assert server_supports("2.14.0-RC.2")
    assert not server_supports("2.13.9") and not server_supports("2.9.25") and not server_supports("")
    assert which_path(enabled=True, server_version="2.15.1", stream="S", allow_batched=True)[0]
    on, why = which_path(enabled=True, server_version="2.9.25", stream="S", allow_batched=None)
    assert not on and "server 2.9.25 has no fast-ingest batches: needs 2.14+" in why
    on, why = which_path(enabled=True, server_version="2.15.1", stream=None, allow_batched=None)
    assert not on and "run `cs nats setup`" in why

"""Delivery under failure, in both modes (log lines as fast-ingest batches, and pipelined).

A server SIGKILLed twice mid-publish; ``cs events publish`` SIGKILLed mid-publish, then ``cs events
flush``; ``cs stream`` SIGKILLed mid-batch, then ``cs events flush``; the stream leader of an R3 stream
killed in a 3-node cluster. Each reads the stream back and checks that every journaled event is stored
exactly once, in order, and that the intended path was really used.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import nats
import pytest

from cloudstation.events import contract as c
from cloudstation.events.identity import DeploymentRef
from cloudstation.events.jetstream import StreamSpec, setup_stream
from cloudstation.events.outbox import Outbox
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import settings_from_env
from tests.conftest import CsRunner
from tests.natsserver import NatsCluster, NatsServer
from tests.streamread import StoredMsg, read_stream, read_stream_async, stream_count

pytestmark = pytest.mark.slow

MODES = ["fast", "pipelined"]


def deployment_events(dep: str, job: int, logs: int) -> list[c.Event]:
    """IN_PROGRESS, ``logs`` log lines, succeeded, log end: one deployment's events in order."""
    ref = DeploymentRef(dep, job, service_id="svc", team_id="t", user_id="u", owner_id="o")
    evs = [ref.status_changed("IN_PROGRESS")]
    for i in range(1, logs + 1):
        output: c.LogOutput = "stdout" if i % 3 else "stderr"
        line = ref.log_line(output, f"line {i} of {dep}\n", timestamp=1_700_000_000_000 + i, sequence=i, phase="build")
        evs.append(c.make_event(c.EventKind.BUILD_LOG, line))
    return [*evs, ref.outcome(True), ref.log_end("success")]


def interleave(groups: list[list[c.Event]], chunk: int) -> list[c.Event]:
    """Deployments running side by side: take ``chunk`` events from each in turn."""
    out: list[c.Event] = []
    cursors = [0] * len(groups)
    while any(cur < len(g) for cur, g in zip(cursors, groups, strict=True)):
        for i, g in enumerate(groups):
            out.extend(g[cursors[i] : cursors[i] + chunk])
            cursors[i] += chunk
    return out


def assert_exactly_once_in_order(stored: list[StoredMsg], sent: list[c.Event]) -> None:
    ids = [m.msg_id for m in stored]
    assert len(stored) == len(sent), f"stream holds {len(stored)} messages, {len(sent)} were sent"
    assert len(set(ids)) == len(ids), "a message is stored twice"
    assert set(ids) == {e.msg_id for e in sent}
    # per deployment, lifecycle events (barriers) keep their order, with every log line between start and end
    position = {m.msg_id: i for i, m in enumerate(stored)}
    by_dep: dict[str, list[c.Event]] = defaultdict(list)
    for ev in sent:
        by_dep[ev.deployment_id].append(ev)
    for dep, evs in by_dep.items():
        barriers = [position[e.msg_id] for e in evs if e.is_barrier]
        assert barriers == sorted(barriers), f"lifecycle order broken for {dep}"
        logs = [position[e.msg_id] for e in evs if not e.is_barrier]
        assert min(logs) > barriers[0] and max(logs) < barriers[-2], f"log line outside its deployment for {dep}"


def mode_env(mode: str) -> dict[str, str]:
    return {"CS_FAST_INGEST": "auto" if mode == "fast" else "off"}


async def make_stream(servers: str, mode: str, replicas: int = 1) -> None:
    nc = await nats.connect(servers.split(","))
    try:
        spec = StreamSpec("CLOUDSTATION", c.stream_subjects(""), replicas=replicas, allow_batched=mode == "fast")
        res = await setup_stream(nc.jetstream(), spec)
        assert res.allow_batched == (mode == "fast")
    finally:
        await nc.close()


def assert_mode_used(pub: Publisher, mode: str) -> None:
    if mode == "fast":
        assert pub._fast is not None and pub._fast.enabled and pub._fast.batches > 0
    else:
        assert pub._fast is None


@pytest.mark.parametrize("mode", MODES)
def test_server_sigkilled_twice_mid_batch(tmp_path: Path, mode: str) -> None:
    server = NatsServer(tmp_path / "n").start()
    sent = interleave([deployment_events(f"dep-{d}", d, 497) for d in range(20)], chunk=50)

    async def scenario() -> None:
        await make_stream(server.url, mode)
        env = {"NATS_SERVERS": server.url, "NATS_PUBLISH_TIMEOUT": "1s", **mode_env(mode)}
        settings = settings_from_env(env)
        assert settings is not None
        with Outbox(tmp_path / "state") as outbox:
            pub = Publisher(settings, outbox, window=256)
            await pub.start()
            for i in range(0, len(sent), 500):
                pub.submit(sent[i : i + 500])
                await asyncio.sleep(0.02)
            for kill_at in (2_500, 6_500):
                while pub.delivered < kill_at:
                    await asyncio.sleep(0.005)
                await asyncio.to_thread(server.kill)
                await asyncio.sleep(1.0)
                await asyncio.to_thread(server.start)
            assert await pub.wait(timeout=120), f"{pub.undelivered} events still undelivered"
            assert_mode_used(pub, mode)
            report = await pub.close()
            assert report.complete and report.errors == []
            assert outbox.count(mine=False) == 0
        assert_exactly_once_in_order(await read_stream_async(server.url), sent)

    try:
        asyncio.run(scenario())
    finally:
        server.kill()


@pytest.mark.parametrize("mode", MODES)
def test_cs_events_publish_sigkilled_mid_publish_then_flush_delivers_the_rest_once(
    cs: CsRunner, tmp_path: Path, mode: str
) -> None:
    server = NatsServer(tmp_path / "n").start()
    try:
        asyncio.run(make_stream(server.url, mode))
        sent = interleave([deployment_events(f"dep-{d}", d, 4997) for d in range(4)], chunk=100)
        batch = tmp_path / "batch.jsonl"
        with batch.open("w") as fh:
            for ev in sent:
                fh.write(json.dumps({"kind": ev.kind.value, "data": json.loads(ev.data)}) + "\n")
        env = {"NATS_SERVERS": server.url, **mode_env(mode)}
        proc = cs.popen("events", "publish", "--batch", str(batch), "--json", env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stream_count(server.url) < 200:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = len(read_stream(server.url))
        assert partial < len(sent), "the process finished before it could be killed"
        pending = json.loads(cs("events", "pending", "--json").stdout)
        assert pending and all(not p["owner_alive"] for p in pending)

        res = cs("events", "flush", env=env)
        assert res.returncode == 0, res.stderr
        stored_msgs = read_stream(server.url)
        # cs re-created the msg ids from the batch file, so compare by content and order
        assert len(stored_msgs) == len(sent)
        assert len({m.msg_id for m in stored_msgs}) == len(sent)
        contents = [m.data for m in stored_msgs]
        assert sorted(contents) == sorted(ev.data for ev in sent)
        assert cs("events", "pending", "--json").stdout.strip() == "[]"
    finally:
        server.kill()


class _Tap:
    """Counts log messages that carried a fast-ingest reply subject."""

    def __init__(self) -> None:
        self.fast = 0
        self.nc: Any = None

    async def start(self, url: str) -> None:
        self.nc = await nats.connect(url)

        async def cb(msg: Any) -> None:
            if msg.reply.endswith(".$FI"):
                self.fast += 1

        await self.nc.subscribe("build.log.>", cb=cb)
        await self.nc.flush()


@pytest.mark.parametrize("mode", MODES)
def test_cs_stream_sigkilled_mid_batch_then_flush_delivers_every_journaled_line_once(
    cs: CsRunner, tmp_path: Path, mode: str
) -> None:
    server = NatsServer(tmp_path / "n").start()
    env = {"NATS_SERVERS": server.url, **mode_env(mode)}
    child = "import sys\nfor i in range(60000): sys.stdout.write(f'line {i:07d}\\n')\n"
    try:
        asyncio.run(make_stream(server.url, mode))

        async def run() -> int:
            tap = _Tap()
            await tap.start(server.url)
            proc = await asyncio.to_thread(
                cs.popen, "stream", "--deployment-id", "kill", "--job-id", "1", "--end", "--quiet", "--",
                "python3", "-c", child, env=env,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and await asyncio.to_thread(stream_count, server.url) < 3000:
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
            await tap.nc.flush()
            await tap.nc.close()
            return tap.fast

        fast_replies = asyncio.run(run())
        assert (fast_replies > 0) == (mode == "fast")
        before = read_stream(server.url)
        assert 0 < len(before) < 60_000, "the process finished before it could be killed"
        pending = json.loads(cs("events", "pending", "--json").stdout)
        assert pending and all(not p["owner_alive"] for p in pending)
        journaled = [m.msg_id for m in before] + [p["msg_id"] for p in pending]

        res = cs("events", "flush", env={**env, "CS_DELIVERY_TIMEOUT": "300s"}, timeout=400)
        assert res.returncode == 0, res.stderr
        after = read_stream(server.url)
        ids = [m.msg_id for m in after]
        assert len(ids) == len(set(ids)), "a line is stored twice"
        assert set(ids) == set(journaled), "a journaled line is missing, or an unknown one appeared"
        lines = [json.loads(m.data)["content"] for m in after if m.subject == "build.log.kill"]
        # the lines the killed process had read and journaled: a prefix of the output, in order
        assert lines == [f"line {i:07d}\n" for i in range(len(lines))]
        assert cs("events", "pending", "--json").stdout.strip() == "[]"
    finally:
        server.kill()


@pytest.mark.parametrize("mode", MODES)
def test_cluster_stream_leader_killed_mid_batch(tmp_path: Path, mode: str) -> None:
    cluster = NatsCluster(tmp_path / "c").start()
    sent = interleave([deployment_events(f"dep-{d}", d, 597) for d in range(5)], chunk=40)

    async def leader() -> str:
        nc = await nats.connect(cluster.urls.split(","))
        try:
            info = await nc.jetstream().stream_info("CLOUDSTATION")
            assert info.cluster is not None and info.cluster.leader
            return str(info.cluster.leader)
        finally:
            await nc.close()

    async def scenario() -> str:
        for _ in range(100):  # the meta leader is elected a moment after start
            try:
                await make_stream(cluster.urls, mode, replicas=3)
                break
            except Exception:
                await asyncio.sleep(0.2)
        else:
            pytest.fail("the cluster never accepted the stream")
        name = await leader()
        env = {"NATS_SERVERS": cluster.urls, "NATS_PUBLISH_TIMEOUT": "2s", **mode_env(mode)}
        settings = settings_from_env(env)
        assert settings is not None
        with Outbox(tmp_path / "state") as outbox:
            pub = Publisher(settings, outbox, window=256)
            await pub.start()
            pub.submit(sent)
            while pub.delivered < len(sent) // 3:
                await asyncio.sleep(0.005)
            victim = next(n for n in cluster.nodes if n.name == name)
            await asyncio.to_thread(victim.kill)
            assert await pub.wait(timeout=120), f"{pub.undelivered} undelivered"
            assert_mode_used(pub, mode)
            report = await pub.close()
            assert report.complete, (report, pub.delivered, pub.undelivered, len(sent))
        survivors = ",".join(n.url for n in cluster.nodes if n.running)
        assert_exactly_once_in_order(await read_stream_async(survivors), sent)
        return name

    try:
        killed = asyncio.run(scenario())
        assert killed in {"n1", "n2", "n3"}
    finally:
        cluster.stop()

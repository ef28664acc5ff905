"""Delivery under failure: servers SIGKILLed and restarted, the cs process SIGKILLed, a cluster leader lost.

Every scenario ends by reading the stream back and asserting each event is stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from cloudstation.events import contract as c
from cloudstation.events.outbox import Outbox
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import settings_from_env
from tests.conftest import CsRunner
from tests.natsserver import NatsCluster, NatsServer
from tests.streamread import StoredMsg, read_stream, read_stream_async, stream_count

pytestmark = pytest.mark.slow


def deployment_events(dep: str, job: int, logs: int) -> list[c.Event]:
    """IN_PROGRESS, ``logs`` log lines, succeeded, log end: one deployment's events in order."""
    evs = [
        c.make_event(c.EventKind.STATUS_CHANGED, c.StatusChanged(job_id=job, status="IN_PROGRESS"), deployment_id=dep)
    ]
    for i in range(1, logs + 1):
        line = c.BuildLog(
            deployment_id=dep,
            job_id=job,
            service_id="svc",
            owner_id="o",
            log_output="stdout" if i % 3 else "stderr",
            content=f"line {i} of {dep}\n",
            timestamp=1_700_000_000_000 + i,
            sequence=i,
            phase="build",
        )
        evs.append(c.make_event(c.EventKind.BUILD_LOG, line))
    result = c.DeploymentResult(
        job_id=job, type="git_repo", deployment_id=dep, service_id="svc", team_id="t", user_id="u", owner_id="o"
    )
    evs.append(c.make_event(c.EventKind.SUCCEEDED, result))
    evs.append(c.make_event(c.EventKind.BUILD_LOG_END, c.BuildLogEnd(deployment_id=dep, job_id=job, status="success")))
    return evs


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


async def _setup_stream(servers: str, replicas: int = 1) -> None:
    import nats

    from cloudstation.events.jetstream import StreamSpec, setup_stream

    nc = await nats.connect(servers.split(","))
    try:
        await setup_stream(nc.jetstream(), StreamSpec("CLOUDSTATION", c.stream_subjects(""), replicas=replicas))
    finally:
        await nc.close()


def test_scenario_5_ten_thousand_events_while_the_server_is_sigkilled_twice(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "n").start()
    sent = interleave([deployment_events(f"dep-{d}", d, 497) for d in range(20)], chunk=50)
    assert len(sent) == 10_000

    async def scenario() -> None:
        await _setup_stream(server.url)
        settings = settings_from_env({"NATS_SERVERS": server.url, "NATS_PUBLISH_TIMEOUT": "1s"})
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
            report = await pub.close()
            assert report.complete and report.errors == []
            assert outbox.count(mine=False) == 0
        assert_exactly_once_in_order(await read_stream_async(server.url), sent)

    try:
        asyncio.run(scenario())
    finally:
        server.kill()


def test_scenario_6_cs_sigkilled_mid_publish_then_flush_delivers_the_rest_once(cs: CsRunner, tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "n").start()
    try:
        asyncio.run(_setup_stream(server.url))
        sent = interleave([deployment_events(f"dep-{d}", d, 4997) for d in range(4)], chunk=100)
        batch = tmp_path / "batch.jsonl"
        with batch.open("w") as fh:
            for ev in sent:
                fh.write(json.dumps({"kind": ev.kind.value, "data": json.loads(ev.data)}) + "\n")
        env = {"NATS_SERVERS": server.url}
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


def test_scenario_7_cluster_stream_leader_killed_mid_publish(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "c").start()
    sent = interleave([deployment_events(f"dep-{d}", d, 597) for d in range(5)], chunk=40)

    async def leader() -> str:
        import nats

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
                await _setup_stream(cluster.urls, replicas=3)
                break
            except Exception:
                await asyncio.sleep(0.2)
        else:
            pytest.fail("the cluster never accepted the stream")
        name = await leader()
        settings = settings_from_env({"NATS_SERVERS": cluster.urls, "NATS_PUBLISH_TIMEOUT": "2s"})
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

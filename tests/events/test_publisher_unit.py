"""The Publisher in-process against a real nats-server: rewind after missing PubAcks, parking on a
definite refusal, barriers; and its ack window's size under PubAck timeouts. The stream is read back
(``tests/streamread.py``) as the ground truth.

Faults are made real, never mocked: a paused server (SIGSTOP) answers nothing; a subject that no stream
covers but a plain subscriber listens to gets no PubAck (a stream added later stores the resend); a
subject nobody listens to is "no responders", then "no stream" once JetStream is asked. Each test waits
for the fault to have been seen (a failure recorded in the outbox, a message seen on the wire) before
curing it, so it cannot pass without exercising the path it names.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from cloudstation.errors import DeliveryError
from cloudstation.events import contract as c
from cloudstation.events.ackwindow import Ack, AckWindow
from cloudstation.events.jetstream import StreamSpec, setup_stream
from cloudstation.events.outbox import Outbox, StoredEvent
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import NatsSettings, settings_from_env
from tests.events.test_outbox_unit import line, status
from tests.natsserver import NatsServer
from tests.streamread import read_stream_async

ALL = c.stream_subjects("")  # deployment.>, job.destroyed, build.log.>


def settings(url: str, *, fast: str) -> NatsSettings:
    s = settings_from_env({"NATS_SERVERS": url, "NATS_PUBLISH_TIMEOUT": "500ms", "CS_FAST_INGEST": fast})
    assert s is not None
    return s


def result(dep: str, *, job: int = 1) -> c.Event:
    payload = c.DeploymentResult(
        job_id=job, type="git_repo", deployment_id=dep, service_id="svc", team_id="t", user_id="u", owner_id="o"
    )
    return c.make_event(c.EventKind.SUCCEEDED, payload)


def end(dep: str) -> c.Event:
    return c.make_event(c.EventKind.BUILD_LOG_END, c.BuildLogEnd(deployment_id=dep, job_id=1, status="success"))


async def cover(url: str, subjects: list[str]) -> None:
    """Create the stream, or change the subjects it covers."""
    nc = await nats.connect(url)
    try:
        await setup_stream(nc.jetstream(), StreamSpec("CLOUDSTATION", subjects))
    finally:
        await nc.close()


class Tap:
    """A plain subscriber that never answers: what went on the wire, by msg id."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._nc: Any = None

    async def start(self, url: str, subject: str) -> Tap:
        self._nc = await nats.connect(url)

        async def cb(msg: Any) -> None:
            if msg.headers and c.HEADER_MSG_ID in msg.headers:
                self.seen[msg.headers[c.HEADER_MSG_ID]] += 1

        await self._nc.subscribe(subject, cb=cb)
        await self._nc.flush()
        return self

    async def stop(self) -> None:
        await self._nc.close()


@pytest.fixture
async def tap(nats_server: NatsServer) -> AsyncIterator[Callable[[str], Any]]:
    taps: list[Tap] = []

    async def make(subject: str) -> Tap:
        taps.append(await Tap().start(nats_server.url, subject))
        return taps[-1]

    yield make
    for t in taps:
        await t.stop()


async def until(what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.02)


def failures_recorded(box: Outbox) -> bool:
    """The Publisher gave up waiting on at least one event (and will send it again)."""
    return any(p.attempts > 0 for p in box.pending())


async def stored_ids(url: str) -> list[str]:
    return [m.msg_id for m in await read_stream_async(url)]


# -- rewind ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", ["off", "on"])
async def test_missing_pubacks_rewind_and_resend_with_the_same_ids_stored_once(
    nats_server: NatsServer, tmp_path: Path, tap: Callable[[str], Any], fast: str
) -> None:
    # catches: no resend after a missing PubAck (never delivered), a resend with new msg ids or from the
    # wrong place (duplicates or gaps in the stream), a late PubAck of an expired send counted again
    await cover(nats_server.url, ALL)
    wire = await tap("build.log.>")
    evs = [status("d"), *[line("d", i) for i in range(1, 41)], result("d"), end("d")]
    with Outbox(tmp_path / "state") as box:
        pub = Publisher(settings(nats_server.url, fast=fast), box, window=16)
        await pub.start()
        try:
            assert await pub.wait(pub.submit(evs[:1], track=True), timeout=30)  # connected, stream in place
            assert nats_server.proc is not None
            os.kill(nats_server.proc.pid, signal.SIGSTOP)  # the server answers nothing from now on
            try:
                # tracked log lines are pipelined one by one; untracked ones may go as fast-ingest batches
                seqs = pub.submit(evs[1:], track=fast == "off")
                await until("a PubAck timeout", lambda: failures_recorded(box))
            finally:
                os.kill(nats_server.proc.pid, signal.SIGCONT)
            assert await pub.wait(timeout=60), f"{pub.undelivered} undelivered"
            assert pub.delivered == len(evs)
            assert pub.undelivered == 0
            if fast == "off":
                first = pub.outcome(seqs[0])
                # the copy sent before the pause was stored; the resend (same msg id) was a duplicate
                assert isinstance(first, Ack) and first.duplicate
        finally:
            report = await pub.close(timeout=5)
        assert report.complete and report.errors == []
        assert box.count(mine=False) == 0
    assert await stored_ids(nats_server.url) == [e.msg_id for e in evs]
    first_line = evs[1].msg_id
    await until("the resend on the wire", lambda: wire.seen[first_line] >= 2)


# -- parking -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", ["off", "on"])
async def test_no_stream_for_a_deployments_log_parks_it_and_its_later_events_while_others_go_through(
    nats_server: NatsServer, tmp_path: Path, fast: str
) -> None:
    # catches: a refusal blocking every deployment, a parked deployment's later events sent out of order
    # (its result before its log), parked events dropped from the outbox, parked events never retried
    await cover(nats_server.url, ["deployment.>", "job.destroyed", "build.log.dep-b", "build.log.end.>"])
    a = [status("dep-a"), line("dep-a", 1), line("dep-a", 2), result("dep-a"), end("dep-a")]
    b = [status("dep-b", job=2), line("dep-b", 1), line("dep-b", 2), line("dep-b", 3), result("dep-b"), end("dep-b")]
    evs = [a[0], b[0], a[1], b[1], a[2], b[2], b[3], a[3], b[4], a[4], b[5]]
    tracked = {a[3].msg_id, a[4].msg_id, b[4].msg_id, b[5].msg_id}
    with Outbox(tmp_path / "state") as box:
        pub = Publisher(settings(nats_server.url, fast=fast), box, retry_parked_after=0.5)
        await pub.start()
        try:
            seq_of: dict[str, int] = {}
            for ev in evs:
                (seq,) = pub.submit([ev], track=ev.msg_id in tracked)
                seq_of[ev.msg_id] = seq
            assert await pub.wait([seq_of[m] for m in tracked], timeout=30)
            # read before the next await: a retry pass (every 0.5 s) parks them again, but briefly clears this
            held, other = pub.outcome(seq_of[a[3].msg_id]), pub.outcome(seq_of[b[4].msg_id])
            assert isinstance(held, DeliveryError)
            assert "held back behind an earlier event of deployment dep-a" in str(held)
            assert "no JetStream stream covers subject 'build.log.dep-a'" in str(held)
            assert isinstance(other, Ack)
            assert await stored_ids(nats_server.url) == [a[0].msg_id] + [e.msg_id for e in b]
            assert [s.event.msg_id for s in box.next_batch(0, 100)] == [e.msg_id for e in a[1:]]

            await cover(nats_server.url, ALL)  # the cause is cured: the next pass delivers them, in order
            await until("the parked events delivered", lambda: pub.undelivered == 0)
            assert isinstance(pub.outcome(seq_of[a[3].msg_id]), Ack)
        finally:
            report = await pub.close(timeout=5)
        assert report.complete
        assert box.count(mine=False) == 0
    assert await stored_ids(nats_server.url) == [a[0].msg_id] + [e.msg_id for e in b] + [e.msg_id for e in a[1:]]


# -- barriers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fast", "uncovered"),
    [("off", "lines before"), ("on", "lines before"), ("off", "the barrier"), ("on", "the barrier")],
)
async def test_a_barrier_is_stored_after_everything_before_it_and_before_everything_after_it(
    nats_server: NatsServer, tmp_path: Path, tap: Callable[[str], Any], fast: str, uncovered: str
) -> None:
    # "lines before": the log lines before deployment.succeeded get no PubAck until a stream covers them.
    #   catches: a barrier sent without waiting for the PubAcks of what precedes it (it would be stored first)
    # "the barrier": deployment.succeeded gets no PubAck until a stream covers it.
    #   catches: events after a barrier sent before its PubAck (they would be stored before it)
    if uncovered == "lines before":
        missing, first_cover = "build.log.d", ["deployment.>", "job.destroyed", "build.log.end.>"]
    else:
        missing, first_cover = "deployment.succeeded", ["deployment.status.changed", "job.destroyed", "build.log.>"]
    await cover(nats_server.url, first_cover)
    wire = await tap(missing)  # listens, never answers: no PubAck (rather than "no responders")
    evs = [status("d"), *[line("d", i) for i in range(1, 6)], result("d"), *[line("d", i) for i in range(6, 9)]]
    evs.append(end("d"))
    first_missing = next(e.msg_id for e in evs if e.subject == missing)
    with Outbox(tmp_path / "state") as box:
        pub = Publisher(settings(nats_server.url, fast=fast), box)
        await pub.start()
        try:
            pub.submit(evs)
            await until("an uncovered event on the wire", lambda: wire.seen[first_missing] > 0)
            await until("a PubAck timeout", lambda: failures_recorded(box))
            await cover(nats_server.url, ALL)
            assert await pub.wait(timeout=60), f"{pub.undelivered} undelivered"
        finally:
            report = await pub.close(timeout=5)
        assert report.complete and report.errors == []
    assert await stored_ids(nats_server.url) == [e.msg_id for e in evs]


# -- the ack window ----------------------------------------------------------------------------------


class Recorder:
    """The window's outcomes, as a list each."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.retried: list[int] = []
        self.refused: list[int] = []

    def stored(self, item: StoredEvent, ack: Ack | None) -> None:
        self.acked.append(item.seq)

    def retry_from(self, item: StoredEvent, reason: str) -> None:
        self.retried.append(item.seq)

    def set_aside(self, item: StoredEvent, reason: str) -> None:
        self.refused.append(item.seq)


async def test_a_pubacks_timeout_halves_the_window_once_and_a_window_of_pubacks_doubles_it_back(
    nats_server: NatsServer,
) -> None:
    # catches: processes sharing a slow server each keeping a full window queued there past the timeout and
    # resending all of it at every timeout (issue 12: the pipelined path collapsed at K = 64); a window halved
    # once per expired message instead of once per episode; a window that never grows back; a late answer to
    # an expired send counted as an ack
    await cover(nats_server.url, ALL)
    nc = await nats.connect(nats_server.url)
    rec = Recorder()
    window = AckWindow(rec, size=64, timeout=0.5, describe=str)
    await window.attach(nc)
    watch = asyncio.create_task(window.watch())
    items = [StoredEvent(i, line("d", i), 0.0, 0) for i in range(1, 65)]
    assert nats_server.proc is not None
    try:
        os.kill(nats_server.proc.pid, signal.SIGSTOP)
        try:
            for item in items:
                assert await window.send(item, None)
            await window.settle()  # every entry timed out: nothing was answered
        finally:
            os.kill(nats_server.proc.pid, signal.SIGCONT)
        assert rec.retried and rec.acked == []
        assert (window.size, window.limit) == (32, 64)
        for item in items:  # the resend, as the Publisher's rewind does it: at most `size` in flight
            await window.wait_for_slot()
            assert await window.send(item, None)
        await window.settle()
        assert sorted(rec.acked) == [i.seq for i in items]  # once each: late answers to expired sends ignored
        assert window.size == 64
    finally:
        watch.cancel()
        await nc.close()


# -- the hand-over of just-journaled rows ------------------------------------------------------------


@pytest.mark.parametrize("fast", ["off", "on"])
async def test_rows_that_did_not_fit_the_hand_over_are_read_back_before_the_held_ones(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: str
) -> None:
    # catches: rows past the in-memory hand-over lost or sent after later rows, or sent twice (the
    # read-back running into rows held in memory); the hand-over itself: tests/events/test_handover.py
    from cloudstation.events import handover

    monkeypatch.setattr(handover, "MAX_ROWS", 10)
    await cover(nats_server.url, ALL)
    evs = [status("d"), *[line("d", i) for i in range(1, 21)], end("d")]
    with Outbox(tmp_path / "state") as box:
        slow = settings_from_env(
            {"NATS_SERVERS": nats_server.url, "NATS_PUBLISH_TIMEOUT": "10s", "CS_FAST_INGEST": fast}
        )
        assert slow is not None  # a long PubAck timeout: the loop is still stalled when the last rows come
        pub = Publisher(slow, box, window=4)
        await pub.start()
        try:
            assert await pub.wait(pub.submit(evs[:1], track=True), timeout=30)  # connected, stream in place
            assert nats_server.proc is not None
            os.kill(nats_server.proc.pid, signal.SIGSTOP)  # the delivery loop stalls (no ack, window full)
            try:
                pub.submit(evs[1:6])
                pub.submit(evs[6:11])  # the hand-over is full (10 rows)
                held_back = pub.submit(evs[11:16])  # journaled, not held: read back later
                await until("the held rows taken by the delivery loop", lambda: len(pub._fresh) == 0)
                later = pub.submit(evs[16:])  # held again, after the rows that did not fit
            finally:
                os.kill(nats_server.proc.pid, signal.SIGCONT)
            assert await pub.wait(timeout=60), f"{pub.undelivered} undelivered"
            assert pub.delivered == len(evs)
        finally:
            report = await pub.close(timeout=5)
        assert report.complete and report.errors == []
        assert box.count(mine=False) == 0
    assert held_back[-1] + 1 == later[0]
    assert await stored_ids(nats_server.url) == [e.msg_id for e in evs]

"""A barrier sent from ``Publisher.submit`` when the delivery loop is idle (issue 12's latency path),
in-process against a real nats-server; the stream read back is the ground truth.

The order this path keeps: the door, then the journal row committed, then the message on the wire, then
the PubAck awaited by the loop (which also flushes and removes the row). Faults are real: a paused
(SIGSTOP) or killed (SIGKILL) server, a read-only outbox (SQLite's own ``query_only``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudstation.errors import OutboxError
from cloudstation.events.ackwindow import Ack
from cloudstation.events.outbox import Outbox
from cloudstation.events.publisher import Publisher
from tests.events.test_outbox_unit import line, status
from tests.events.test_publisher_unit import (
    ALL,
    Tap,
    cover,
    end,
    failures_recorded,
    result,
    settings,
    stored_ids,
    until,
)
from tests.natsserver import NatsServer


@pytest.fixture
async def wire(nats_server: NatsServer) -> AsyncIterator[Tap]:
    """Every lifecycle event that reaches the server, seen by a plain subscriber."""
    tap = await Tap().start(nats_server.url, "deployment.>")
    yield tap
    await tap.stop()


class WireSpy:
    """Wraps the connection's direct write: what went out from ``submit`` and what the journal held then
    (read through a second SQLite connection: only committed rows are visible to it)."""

    def __init__(self, pub: Publisher) -> None:
        self.sent: list[str] = []
        self.committed_then: list[int] = []
        self._db = sqlite3.connect(pub.outbox.path)
        self._write = pub._conn.publish_now
        pub._conn.publish_now = self._spy  # type: ignore[method-assign]

    def _spy(self, subject: str, reply: str, headers: dict[str, str], data: bytes) -> bool:
        self.committed_then.append(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        sent = self._write(subject, reply, headers, data)
        if sent:
            self.sent.append(headers["Nats-Msg-Id"])
        return sent

    def close(self) -> None:
        self._db.close()


def stopped(pid: int) -> bool:
    """Every thread of ``pid`` is stopped (SIGSTOP reaches a busy thread on another core a moment later)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state in "tT" for state in states)


async def started(url: str, box: Outbox, *, fast: str = "off") -> tuple[Publisher, str]:
    """A Publisher that has delivered one event (whose msg id is returned): connected, the stream in
    place, the loop idle."""
    pub = Publisher(settings(url, fast=fast), box)
    await pub.start()
    first = status("warm-up")
    assert await pub.wait(pub.submit([first], track=True), timeout=30)
    await until("the loop idle", lambda: pub._idle_waiting)
    return pub, first.msg_id


async def test_an_idle_publisher_sends_a_barrier_from_submit_after_its_row_is_committed(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # catches: the early send dropped (nothing on the wire when submit returns), the message sent before
    # its row is committed (a crash would lose an event the server stores... and the caller never learnt
    # of), a row left behind or a second copy stored once the PubAck comes
    await cover(nats_server.url, ALL)
    ev = result("d")
    with Outbox(tmp_path / "state") as box:
        pub, first = await started(nats_server.url, box)
        spy = WireSpy(pub)
        try:
            (seq,) = pub.submit([ev], track=True)
            assert spy.sent == [ev.msg_id]  # on the wire before submit returned
            assert spy.committed_then == [1]  # and only once its row was committed
            assert await pub.wait([seq], timeout=30)
            ack = pub.outcome(seq)
            assert isinstance(ack, Ack) and not ack.duplicate
            await until("the loop idle again", lambda: pub._idle_waiting)
        finally:
            spy.close()
            report = await pub.close(timeout=5)
        assert report.complete and report.errors == []
        assert box.count(mine=False) == 0
    assert await stored_ids(nats_server.url) == [first, ev.msg_id]


@pytest.mark.parametrize("fast", ["off", "on"])
async def test_a_barrier_behind_unacknowledged_events_waits_for_them_and_keeps_its_place(
    nats_server: NatsServer, tmp_path: Path, fast: str
) -> None:
    # catches: a barrier sent early while earlier events await their PubAcks (it could be stored before
    # them), two barriers both sent early (the second before the first's PubAck)
    await cover(nats_server.url, ALL)
    evs = [status("d"), *[line("d", i) for i in range(1, 6)], result("d"), end("d")]
    with Outbox(tmp_path / "state") as box:
        pub, first = await started(nats_server.url, box, fast=fast)
        spy = WireSpy(pub)
        assert nats_server.proc is not None
        os.kill(nats_server.proc.pid, signal.SIGSTOP)  # nothing is acknowledged meanwhile
        try:
            for ev in evs:
                pub.submit([ev])
            assert spy.sent == [evs[0].msg_id]  # only the first: the loop was idle, nothing unacknowledged
        finally:
            os.kill(nats_server.proc.pid, signal.SIGCONT)
        try:
            assert await pub.wait(timeout=60), f"{pub.undelivered} undelivered"
        finally:
            spy.close()
            report = await pub.close(timeout=5)
        assert report.complete and report.errors == []
        assert box.count(mine=False) == 0
    assert await stored_ids(nats_server.url) == [first] + [e.msg_id for e in evs]


@pytest.mark.parametrize("when", ["before the server read it", "right after it was sent"])
async def test_a_barrier_sent_early_then_the_server_killed_is_delivered_once_after_a_restart(
    nats_server: NatsServer, tmp_path: Path, when: str
) -> None:
    # "before the server read it": the server is paused, then killed with the message unread in its socket.
    # "right after it was sent": killed at once; it may or may not have stored the message.
    # catches: an early-sent barrier lost with the connection (never resent), resent under a new msg id or
    # twice (a duplicate in the stream), its row left behind, later events overtaking it
    await cover(nats_server.url, ALL)
    ev, after = result("d"), end("d")
    with Outbox(tmp_path / "state") as box:
        pub, first = await started(nats_server.url, box)
        spy = WireSpy(pub)
        try:
            assert nats_server.proc is not None
            if when == "before the server read it":
                os.kill(nats_server.proc.pid, signal.SIGSTOP)
                await until("the server stopped", lambda: stopped(nats_server.proc.pid))  # type: ignore[union-attr]
            (seq,) = pub.submit([ev], track=True)
            assert spy.sent == [ev.msg_id]
            nats_server.kill()  # no await since submit: the loop has not run
            pub.submit([after])
            if when == "before the server read it":  # its PubAck can never come: sent again
                await until("the loss noticed", lambda: failures_recorded(box))
            else:  # its PubAck may have been read before the end of the connection
                await until("the loss noticed", lambda: not pub._conn.is_connected)
            nats_server.start()
            assert await pub.wait(timeout=60), f"{pub.undelivered} undelivered"
            ack = pub.outcome(seq)
            assert isinstance(ack, Ack)
            if when == "before the server read it":
                assert not ack.duplicate  # the first copy never reached the stream: the resend stored it
        finally:
            spy.close()
            report = await pub.close(timeout=5)
        assert report.complete and report.errors == []
        assert box.count(mine=False) == 0
    assert await stored_ids(nats_server.url) == [first, ev.msg_id, after.msg_id]


async def test_a_barrier_the_outbox_cannot_journal_is_refused_before_anything_is_sent(
    nats_server: NatsServer, tmp_path: Path, wire: Tap
) -> None:
    # catches: the message put on the wire before the journal append (the caller is told it was not kept,
    # but the server would store it), a failed append leaving the publisher unable to send the next one
    await cover(nats_server.url, ALL)
    ev = result("d")
    with Outbox(tmp_path / "state") as box:
        pub, first = await started(nats_server.url, box)
        spy = WireSpy(pub)
        try:
            box._db.execute("PRAGMA query_only = 1")  # SQLite refuses every write: a read-only outbox
            with pytest.raises(OutboxError):
                pub.submit([ev], track=True)
            assert spy.sent == [] and spy.committed_then == []
            box._db.execute("PRAGMA query_only = 0")
            nxt = status("d", job=2)
            assert await pub.wait(pub.submit([nxt], track=True), timeout=30)
            assert spy.sent == [nxt.msg_id]
        finally:
            spy.close()
            report = await pub.close(timeout=5)
        assert report.complete
    assert await stored_ids(nats_server.url) == [first, nxt.msg_id]
    assert wire.seen[ev.msg_id] == 0


async def test_a_flush_that_times_out_leaves_the_connection_working_when_the_late_pong_comes(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # catches: a PONG future cancelled by the flush timeout (nats-py's read loop dies on the late PONG:
    # every later PubAck is lost, the connection is dropped), a flush that never times out
    await cover(nats_server.url, ALL)
    with Outbox(tmp_path / "state") as box:
        pub, _ = await started(nats_server.url, box)
        nc = pub._conn.nc
        reading = nc._reading_task
        try:
            assert nats_server.proc is not None
            pub._conn.settings = dataclasses.replace(pub._conn.settings, flush_timeout=0.2)
            os.kill(nats_server.proc.pid, signal.SIGSTOP)
            try:
                await until("the server stopped", lambda: stopped(nats_server.proc.pid))  # type: ignore[union-attr]
                with pytest.raises(TimeoutError):
                    await pub._conn.flush()
            finally:
                os.kill(nats_server.proc.pid, signal.SIGCONT)
            await until("the late PONG taken", lambda: not nc._pongs)
            await asyncio.sleep(0.1)
            assert not reading.done() and nc.is_connected and pub._conn.nc is nc
            (seq,) = pub.submit([result("d")], track=True)
            assert await pub.wait([seq], timeout=30)
            assert isinstance(pub.outcome(seq), Ack)
        finally:
            report = await pub.close(timeout=5)
        assert report.complete and report.errors == []

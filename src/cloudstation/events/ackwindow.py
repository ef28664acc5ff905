"""The ack window: every message sent and not yet answered, and what each answer means.

Each pipelined publish gets its own reply subject (``<inbox>.<token>``) under one wildcard inbox
subscription, so thousands of PubAcks can be outstanding. An in-flight entry leaves the table when
its answer comes, and the owner (the :class:`~cloudstation.events.publisher.Publisher`) hears one
outcome through :class:`Outcomes`:

- a PubAck: the event is stored (``stored``);
- "no responders", an unreadable or a retryable refusal, no PubAck within the publish timeout, a lost
  connection, a failed publish: ambiguous, send again from that event on (``retry_from``); a "no
  responders" event is also kept as a suspect for :meth:`AckWindow.take_suspects` (no stream, or a
  leader election?);
- JetStream refusing the event for its size: refused for good (``set_aside``).

The window's size adapts: a PubAck timeout means the server is behind, so the window is halved (once
per episode, never below 16), and each full window of PubAcks doubles it back up to its limit. Processes
sharing a slow server then slow down together instead of each keeping a full window queued there past
the timeout and resending all of it (``docs/PERFORMANCE.md``, "The adaptive window").

A barrier event carries a future, resolved with its :class:`Ack` or failed with the reason.
Fast-ingest batches (:mod:`cloudstation.events.fastbatch`) keep one entry for a whole open batch
through :meth:`AckWindow.open`, :meth:`AckWindow.advance` and :meth:`AckWindow.close`, so the
timeout watch, :meth:`AckWindow.settle` and :meth:`AckWindow.expire_all` cover batches too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from cloudstation.errors import DeliveryError
from cloudstation.events.outbox import StoredEvent

_MIN_WINDOW = 16


class _PubAckWire(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_ACK_DECODER = msgspec.json.Decoder(_PubAckWire)


@dataclass(frozen=True, slots=True)
class Ack:
    """A JetStream PubAck."""

    stream: str
    seq: int
    duplicate: bool


@dataclass(slots=True)
class InFlight:
    """One message (or one open fast-ingest batch: ``item`` is its oldest unacknowledged row) awaiting
    its answer since ``sent_at`` (monotonic)."""

    item: StoredEvent
    sent_at: float
    barrier: asyncio.Future[Ack] | None


class Outcomes(Protocol):
    """What the owner of the window does with each answer."""

    def stored(self, item: StoredEvent, ack: Ack | None) -> None:
        """``item`` is stored (``ack`` is None when a fast-ingest ack covers it)."""

    def retry_from(self, item: StoredEvent, reason: str) -> None:
        """Ambiguous: everything from ``item`` on must be sent again (same msg ids)."""

    def set_aside(self, item: StoredEvent, reason: str) -> None:
        """Refused for good: never send ``item`` again."""


class AckWindow:
    """At most ``size`` pipelined messages awaiting their PubAck (a barrier waits alone); ``size`` adapts
    between 16 and ``limit``."""

    def __init__(
        self, outcomes: Outcomes, *, size: int, timeout: float, describe: Callable[[BaseException], str]
    ) -> None:
        self.limit = max(1, size)  # the most messages ever in flight
        self.size = self.limit  # the current window: halved after a timeout, doubled back while all is acked
        self._acks = 0  # PubAcks since the window last changed
        self._shrunk_at = 0.0  # when a timeout last halved the window (monotonic)
        self.timeout = timeout  # the publish timeout: no answer within it is a failure
        self._outcomes = outcomes
        self._describe = describe
        self._nc: Any = None
        self._inbox = ""
        self._token = 0
        self._table: dict[str, InFlight] = {}  # oldest first (insertion order)
        self._suspects: dict[int, StoredEvent] = {}  # "no responders": no stream, or an election?
        self._slot_free = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()

    def __len__(self) -> int:
        return len(self._table)

    def holds(self, token: str) -> bool:
        return token in self._table

    def entry(self, token: str) -> InFlight | None:
        return self._table.get(token)

    async def attach(self, nc: Any) -> None:
        """Use a new connection: its own reply subjects, under one wildcard subscription."""
        self._inbox = nc.new_inbox() + "."
        await nc.subscribe(self._inbox + "*", cb=self._on_reply)
        self._nc = nc

    # -- sending -----------------------------------------------------------------------------------

    async def send(self, item: StoredEvent, barrier: asyncio.Future[Ack] | None) -> bool:
        """Publish ``item`` with its own reply subject; False if the publish itself failed (retried)."""
        ev = item.event
        self._token += 1
        token = str(self._token)
        self._table[token] = InFlight(item, time.monotonic(), barrier)
        self._settled.clear()
        try:
            await self._nc.publish(ev.subject, ev.data, reply=self._inbox + token, headers=ev.headers())
        except Exception as exc:
            self._table.pop(token, None)
            self._after_removal()
            self._retry(item, f"publish failed: {self._describe(exc)}")
            fail_barrier(barrier, DeliveryError("publish failed"))
            return False
        return True

    def send_now(self, item: StoredEvent, barrier: asyncio.Future[Ack], write: Callable[..., bool]) -> bool:
        """:meth:`send` without awaiting anything: ``write(subject, reply, headers, data)`` puts the
        message on the wire at once. False (nothing in flight) when ``write`` cannot."""
        ev = item.event
        self._token += 1
        token = str(self._token)
        if not write(ev.subject, self._inbox + token, ev.headers(), ev.data):
            return False
        self._table[token] = InFlight(item, time.monotonic(), barrier)
        self._settled.clear()
        return True

    async def wait_for_slot(self) -> None:
        """Until fewer than ``size`` messages are in flight."""
        while len(self._table) >= self.size:
            await self.changed()

    async def changed(self) -> None:
        """Until the window changes (an answer, an expiry, a batch's progress)."""
        self._slot_free.clear()
        await self._slot_free.wait()

    async def settle(self) -> None:
        """Until nothing is in flight (each entry is acknowledged, refused or timed out)."""
        while self._table:
            self._settled.clear()
            await self._settled.wait()

    # -- one entry for a fast-ingest batch ---------------------------------------------------------

    def open(self, token: str, item: StoredEvent) -> None:
        """An entry standing for a batch whose first row is ``item``."""
        self._table[token] = InFlight(item, time.monotonic(), None)

    def advance(self, token: str, oldest: StoredEvent | None = None) -> None:
        """The batch made progress: its clock restarts (and ``oldest`` is its first unacknowledged row)."""
        entry = self._table.get(token)
        if entry is not None:
            if oldest is not None:
                entry.item = oldest
            entry.sent_at = time.monotonic()
        self._slot_free.set()

    def stored(self, item: StoredEvent) -> None:
        """A batch ack covers ``item``."""
        self._outcomes.stored(item, None)

    def close(self, token: str) -> None:
        """The batch is fully acknowledged."""
        if self._table.pop(token, None) is not None:
            self._after_removal()

    def fail(self, token: str, reason: str, *, no_responders: StoredEvent | None = None) -> None:
        """The batch is over without its answer: if it is still in flight, everything in flight
        expires (sent again from its oldest row on)."""
        if no_responders is not None:
            self._suspects[no_responders.seq] = no_responders
        if token in self._table:
            self.expire_all(reason)
        self._slot_free.set()

    # -- failures ----------------------------------------------------------------------------------

    def expire_all(self, reason: str) -> None:
        """Nothing in flight will be answered (e.g. the connection is lost): send it all again."""
        if not self._table:
            return
        entries = list(self._table.values())
        self._table.clear()
        for entry in entries:
            fail_barrier(entry.barrier, DeliveryError(reason))
        self._retry(entries[0].item, reason)
        self._after_removal()

    def withdraw(self, matches: Callable[[StoredEvent], bool]) -> list[InFlight]:
        """Take the entries whose event ``matches`` out of the window (their answer no longer counts)."""
        taken = [(t, e) for t, e in self._table.items() if matches(e.item)]
        for token, _ in taken:
            del self._table[token]
        self._after_removal()
        return [e for _, e in taken]

    def take_suspects(self) -> list[StoredEvent]:
        """The events answered "no responders" since the last call."""
        suspects, self._suspects = self._suspects, {}
        return list(suspects.values())

    async def watch(self) -> None:
        """Forever: expire the entries that got no answer within the publish timeout (oldest first)."""
        timeout = self.timeout
        while True:
            await asyncio.sleep(min(0.1, timeout / 4))
            if not self._table:
                continue
            now = time.monotonic()
            expired: list[tuple[str, InFlight]] = []
            for token, entry in self._table.items():  # oldest first: stop at the first fresh one
                if now - entry.sent_at <= timeout:
                    break
                expired.append((token, entry))
            if not expired:
                continue
            for token, entry in expired:
                del self._table[token]
                fail_barrier(entry.barrier, DeliveryError("PubAck timeout"))
            self._shrink(expired[-1][1].sent_at, now)
            self._retry(expired[0][1].item, f"no PubAck within {timeout:g}s")
            self._after_removal()

    # -- answers -----------------------------------------------------------------------------------

    async def _on_reply(self, msg: Any) -> None:
        entry = self._table.pop(msg.subject[len(self._inbox) :], None)
        if entry is None:
            return  # a late reply after a timeout: the event is sent again and de-duplicated
        self._after_removal()
        item = entry.item
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            # No responders: either no stream covers the subject (definite) or a clustered stream is
            # electing a leader (transient). The owner asks JetStream which one it is (take_suspects).
            self._suspects[item.seq] = item
            self._retry(item, "no responders for the subject")
            fail_barrier(entry.barrier, DeliveryError("no responders"))
            return
        try:
            resp = _ACK_DECODER.decode(msg.data)
        except msgspec.DecodeError:
            self._retry(item, "unreadable PubAck")
            fail_barrier(entry.barrier, DeliveryError("unreadable PubAck"))
            return
        if resp.error is not None:
            desc = str(resp.error.get("description", resp.error))
            err = DeliveryError(f"{item.event.subject}: JetStream refused the event: {desc}")
            if "size" in desc or "payload" in desc:
                self._outcomes.set_aside(item, str(err))
            else:
                self._retry(item, desc)
            fail_barrier(entry.barrier, err)
            return
        ack = Ack(stream=resp.stream, seq=resp.seq, duplicate=resp.duplicate)
        self._grow()
        self._outcomes.stored(item, ack)
        if entry.barrier is not None and not entry.barrier.done():
            entry.barrier.set_result(ack)

    def _shrink(self, sent_at: float, now: float) -> None:
        """A PubAck timeout: the server is behind. Halve the window, once per episode (what was sent
        before the last halving times out for the same reason), so that K processes sharing a server do
        not keep K full windows queued there past the timeout, all resent again and again."""
        if sent_at > self._shrunk_at:
            self.size, self._acks, self._shrunk_at = max(min(self.limit, _MIN_WINDOW), self.size // 2), 0, now

    def _grow(self) -> None:
        """A PubAck: after a whole window of them, double the window again (up to its limit)."""
        if self.size < self.limit:
            self._acks += 1
            if self._acks >= self.size:
                self.size, self._acks = min(self.limit, self.size * 2), 0

    def _retry(self, item: StoredEvent, reason: str) -> None:
        self._outcomes.retry_from(item, reason)
        self._slot_free.set()

    def _after_removal(self) -> None:
        if len(self._table) < self.size:
            self._slot_free.set()
        if not self._table:
            self._settled.set()


def fail_barrier(fut: asyncio.Future[Ack] | None, err: DeliveryError) -> None:
    """Fail a barrier's future (if still pending), marked retrieved: its waiter may already be gone."""
    if fut is not None and not fut.done():
        fut.set_exception(err)
        fut.exception()

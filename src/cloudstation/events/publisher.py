"""Delivery policy: the outbox to JetStream, in order, exactly once (one asyncio task per process).

The task reads this process's outbox rows in order (``HandOver``: just journaled ones from memory) and
publishes them through a ``Connection`` and an ``AckWindow``; a ``Ledger`` records what became of each
event, and this module decides what to send next from it:

- ``build.log`` lines are pipelined (up to ``window`` in flight), or fast-ingest batches (``fastbatch.py``).
- Every other event is a *barrier*: it is published only after everything before it has been
  acknowledged, then alone: publish → PubAck → ``flush()`` bounded by the flush timeout (a flush
  failure is a warning: the PubAck already proves the event is stored). When the loop is idle,
  :meth:`Publisher.submit` writes it to the socket itself (``events/barrier.py``).
- A row leaves the outbox only after its PubAck. A missing PubAck is ambiguous (the message may be
  stored), so the publisher rewinds to the oldest unacknowledged event and sends again with the same
  ``Nats-Msg-Id``; JetStream's duplicate window turns the repeats into no-ops.
- Every event passes :func:`~cloudstation.events.door.admit` before it is journaled (exit 2) and again
  before it is sent (the live ``max_payload``); refused there, or by JetStream for its size, it is *set
  aside*: kept in the outbox, reported, never sent again, blocking nothing.
- A definite refusal that may be cured (no stream, permission denied) parks the event and the later
  ones of its deployment for this pass (kept, reported, tried again later: ``events/ledger.py``).
- Reconnects have no attempt limit while there is work; disconnect and reconnect are logged once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Sequence
from typing import Any

from cloudstation.errors import AuthError, ContractError, DeliveryError, OutboxError, OutboxFullError, RefusedError
from cloudstation.events.ackwindow import Ack, AckWindow, fail_barrier
from cloudstation.events.barrier import EarlyBarrier
from cloudstation.events.connection import Callbacks, Connection, TlsError
from cloudstation.events.contract import Event
from cloudstation.events.door import DEFAULT_MAX_PAYLOAD, admit, admit_all
from cloudstation.events.fastbatch import FastIngest, server_supports, server_version
from cloudstation.events.handover import HandOver
from cloudstation.events.ledger import DeliveryReport, Ledger
from cloudstation.events.outbox import Outbox, StoredEvent
from cloudstation.natsconn import NatsSettings

log = logging.getLogger("cloudstation.events.publisher")

DEFAULT_WINDOW = 2048
_BATCH = 1024


class Publisher:
    """Delivers one process's outbox to JetStream. Use as ``async with Publisher(...) as pub``."""

    def __init__(
        self,
        settings: NatsSettings,
        outbox: Outbox,
        *,
        window: int = DEFAULT_WINDOW,
        retry_parked_after: float = 5.0,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.retry_parked_after = retry_parked_after
        # A refusal that retrying cannot cure (credentials, permissions, an untrusted certificate).
        self.fatal: DeliveryError | None = None
        self._wake = asyncio.Event()
        self._ledger = Ledger(outbox, wake=self._wake.set)
        self._progress = self._ledger.progress
        callbacks = Callbacks(
            connected=self._on_connected,
            lost=self._on_lost,
            restored=self._on_restored,
            publish_denied=self._on_publish_denied,
            fatal=self._on_fatal,
        )
        self._conn = Connection(settings, callbacks, kept_in=outbox.path)
        self._window = AckWindow(
            self._ledger, size=window, timeout=settings.publish_timeout, describe=self._conn.describe
        )
        self._fast: FastIngest | None = None  # fast-ingest batches on this connection, if the server has them
        self._cursor = 0
        self._known_max_payload: int | None = None
        # Events this process just journaled, handed to the delivery loop without reading them back.
        self._fresh = HandOver(outbox)
        self._batch_admitted = 0  # the batch being delivered passes the door under this max_payload (0: unknown)
        self._early = EarlyBarrier()  # a barrier submit() put on the wire itself (events/barrier.py)
        self._idle_waiting = False  # the loop waits in _idle: nothing to send, nothing in flight
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    # -- public API --------------------------------------------------------------------------------
    @property
    def window(self) -> int:
        """At most this many pipelined messages await their PubAck."""
        return self._window.limit

    @property
    def delivered(self) -> int:
        """Events of this process acknowledged so far."""
        return self._ledger.delivered

    @property
    def undelivered(self) -> int:
        """Events of this process not yet acknowledged (parked ones included)."""
        return self._ledger.undelivered

    @property
    def results(self) -> dict[int, Ack | DeliveryError]:
        """Tracked events' PubAcks, or the errors that keep them (see :meth:`outcome`)."""
        return self._ledger.results

    async def start(self) -> None:
        """Adopt events left by dead processes and start delivering in the background."""
        self._known_max_payload = self.outbox.known_max_payload()
        try:
            adopted = self.outbox.adopt_orphans()
        except OutboxFullError as exc:  # they stay with their dead owner for a later process
            self._ledger.warn_outbox(exc)
            adopted = 0
        if adopted:
            log.info("delivering %d event(s) left by an earlier process first", adopted)
        self._ledger.undelivered = self.outbox.count()
        self._task = asyncio.create_task(self._run(), name="cs-publisher")
        self._watchdog = asyncio.create_task(self._window.watch(), name="cs-publisher-watchdog")

    def submit(self, events: Sequence[Event], *, track: bool = False) -> list[int]:
        """Journal ``events`` durably, then let the delivery task publish them. Returns their seqs.

        With ``track``, each event's PubAck (or definite error) is kept in :attr:`results`. An event
        that can never be delivered is refused here (:class:`ContractError`) and nothing is journaled.
        """
        limit = self.payload_limit
        admit_all(events, limit)
        seqs = self.outbox.append(events)
        self._ledger.undelivered += len(seqs)
        self._fresh.put(seqs, events, limit)
        if track:
            self._ledger.tracked.update(seqs)
        if len(seqs) == 1 and events[0].is_barrier:
            self._send_early(StoredEvent(seqs[0], events[0], time.time(), 0))
        self._wake.set()
        return seqs

    async def wait(self, seqs: Collection[int] | None = None, *, timeout: float) -> bool:
        """Wait until ``seqs`` (default: everything this process owns) are delivered or parked.

        Returns False on timeout. Raises :attr:`fatal` (e.g. :class:`AuthError`) if the server refused us.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.fatal is not None:
                raise self.fatal
            if self._ledger.done(seqs, len(self._window)):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self._progress.wait()

    @property
    def max_payload(self) -> int | None:
        """The server's max_payload once known: from INFO when connected, else as remembered in the
        outbox from an earlier connection (by any process sharing it)."""
        live = self._conn.max_payload
        return live if live is not None else self._known_max_payload

    @property
    def payload_limit(self) -> int:
        """The largest message the door lets in: the server's max_payload, as last known, else 1 MiB."""
        return self.max_payload or DEFAULT_MAX_PAYLOAD

    def outcome(self, seq: int) -> Ack | DeliveryError | None:
        """What became of a tracked event: its PubAck, why it is not delivered, or None (still trying)."""
        return self._ledger.outcome(seq)

    async def close(self, timeout: float | None = None) -> DeliveryReport:
        """Wait (bounded) for everything to be acknowledged, then flush, drain and close."""
        timeout = self.settings.delivery_timeout if timeout is None else timeout
        errors: list[str] = []
        try:
            await self.wait(timeout=timeout)
        except DeliveryError as exc:
            errors.append(str(exc))
        self._closing = self._conn.closing = True
        self._wake.set()
        for task in (self._task, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._ledger.flush_removals()
        await self._conn.close()
        report = self._ledger.report()
        report.errors[:0] = errors
        return report

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the delivery loop -------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff()
        while not self._closing:
            try:
                await self._conn.ensure()
            except (AuthError, TlsError) as exc:
                self._on_fatal(exc)
                return
            except DeliveryError as exc:
                log.debug("%s; retrying", exc)
                await asyncio.sleep(backoff.next())
                continue
            try:
                batch = self._next_batch()
                if not batch:
                    self._ledger.flush_removals()
            except OutboxFullError as exc:
                self._ledger.warn_outbox(exc)
                await asyncio.sleep(1.0)
                continue
            if not batch:
                await self._idle(backoff)
                continue
            await self._deliver(batch)
            if self._ledger.rewind_from is not None:
                await self._rewind(backoff)
            else:
                backoff.reset()

    async def _idle(self, backoff: Backoff) -> None:
        """Nothing to send: close the open batch, rewind or retry parked events if due, else sleep."""
        if self._fast is not None:  # an idle moment: close the open fast-ingest batch
            await self._fast.commit()
            self._ledger.flush_removals()
        if self._ledger.rewind_from is not None:  # a failure reported after its batch was sent
            await self._rewind(backoff)
            return
        if self._ledger.parked and time.monotonic() - self._ledger.parked_at > self.retry_parked_after:
            self._ledger.unpark()
            self._cursor = 0
            return
        self._wake.clear()
        self._progress.set()
        self._idle_waiting = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.retry_parked_after):
                await self._wake.wait()
        self._idle_waiting = False

    async def _rewind(self, backoff: Backoff) -> None:
        """Send everything again from the oldest event in doubt, once nothing is in flight."""
        await self._settle()
        self._ledger.flush_removals()
        await self._ledger.park_uncovered(self._window.take_suspects(), self._conn.stream_covers)
        assert self._ledger.rewind_from is not None
        self._early.forget()
        self._cursor = self._ledger.rewind_from - 1
        self._ledger.rewind_from = None
        delay = backoff.next()
        log.debug("rewinding to seq %d after %.2fs", self._cursor + 1, delay)
        await asyncio.sleep(delay)

    def _next_batch(self) -> list[StoredEvent]:
        """The next events after the cursor: from memory when just submitted, else from the outbox."""
        batch, self._batch_admitted = self._fresh.take(self._cursor, _BATCH, self.payload_limit)
        return batch

    async def _deliver(self, batch: list[StoredEvent]) -> None:
        for k, item in enumerate(batch):
            if item.seq <= self._cursor:
                continue  # taken by a run of log lines
            if self._ledger.rewind_from is not None or self._closing:
                return
            if self._ledger.skips(item):
                self._cursor = item.seq
                continue
            if not self._conn.is_connected:
                await self._settle()
                return  # the loop reconnects, rewinds if needed, and comes back here
            if item.event.is_barrier:
                if not self._early.sent(item.seq):
                    await self._settle()
                    if self._ledger.rewind_from is not None:
                        return
                await self._publish_barrier(item)
            elif self._fast is not None and self._fast.takes(item, self._ledger.tracked):
                # The door again (a poison row is set aside) unless the batch is known to pass: then in runs.
                if not self._ledger.parked and 0 < self._batch_admitted <= self._conn.nc.max_payload:
                    taken = await self._fast.add_run(batch, k, self._ledger.tracked, self._interrupted)
                    self._cursor = batch[k + taken - 1].seq
                elif not self._refused(item):
                    await self._fast.add(item)
            else:
                await self._window.wait_for_slot()
                if self._ledger.rewind_from is not None:
                    return
                await self._send(item, None)
            self._cursor = max(self._cursor, item.seq)
            self._ledger.flush_removals(when_due=True)

    def _interrupted(self) -> bool:
        return self._ledger.rewind_from is not None or self._closing or not self._conn.is_connected

    def _send_early(self, item: StoredEvent) -> None:
        """Put a barrier on the wire from :meth:`submit` if the loop is idle (``events/barrier.py``)."""
        ledger = self._ledger
        if not (self._idle_waiting and ledger.undelivered == 1 and not len(self._window) and not ledger.parked):
            return
        if ledger.rewind_from is None and not (self._early or self._closing or self.fatal):
            self._early.send(item, self._window, self._conn.publish_now)

    async def _publish_barrier(self, item: StoredEvent) -> None:
        fut = self._early.take(item.seq)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            if not await self._send(item, fut):
                return
        try:
            await fut
        except DeliveryError:
            return  # parked or rewound by whoever failed the future
        try:
            await self._conn.flush()
        except Exception as exc:
            log.warning(
                "flush after %s failed (the event is acknowledged): %s", item.event.subject, self._conn.describe(exc)
            )

    def _refused(self, item: StoredEvent) -> str:
        """The door before each send: why ``item`` can never be delivered (it is set aside), else ``""``."""
        try:
            admit(item.event, self._conn.nc.max_payload)
        except ContractError as exc:
            self._ledger.set_aside(item, str(exc))
            return str(exc)
        return ""

    async def _send(self, item: StoredEvent, barrier: asyncio.Future[Ack] | None) -> bool:
        refusal = self._refused(item)
        if refusal:
            fail_barrier(barrier, RefusedError(refusal))
            return False
        return await self._window.send(item, barrier)

    async def _settle(self) -> None:
        """Wait until nothing is in flight (the open fast-ingest batch is closed first)."""
        if self._fast is not None:
            await self._fast.commit()
        await self._window.settle()

    # -- the connection's callbacks ----------------------------------------------------------------
    async def _on_connected(self, nc: Any) -> None:
        await self._window.attach(nc)
        self._fast = None
        if self.settings.fast_ingest and server_supports(server_version(nc)):
            self._fast = FastIngest(nc, self._window)
            await self._fast.start()
        with contextlib.suppress(OutboxError, OutboxFullError):
            self.outbox.remember_max_payload(int(nc.max_payload))

    def _on_lost(self) -> None:
        self._window.expire_all("connection lost before the PubAck")

    def _on_restored(self) -> None:
        self._wake.set()

    def _on_publish_denied(self, text: str) -> None:
        """The server refused a subject to us: park the in-flight events published to it."""
        denied = self._window.withdraw(lambda item: f'"{item.event.subject}"' in text or item.event.subject in text)
        for entry in denied:
            err = AuthError(f"permission denied to publish to {entry.item.event.subject!r}")
            self._ledger.park(entry.item, err)
            fail_barrier(entry.barrier, err)

    def _on_fatal(self, err: DeliveryError) -> None:
        self.fatal = err
        self._progress.set()


class Backoff:
    """The delivery loop's pause before trying again: 50 ms, doubling, at most 2 s; reset by progress."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first, self.cap, self.current = first, cap, 0.0

    def next(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.first)
        return self.current

    def reset(self) -> None:
        self.current = 0.0

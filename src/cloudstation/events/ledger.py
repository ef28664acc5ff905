"""What became of each event of one process: delivered, in doubt, set aside, parked, held back.

The :class:`~cloudstation.events.publisher.Publisher` decides what to send and when; its
:class:`~cloudstation.events.ackwindow.AckWindow` reports each answer here (:class:`Ledger` is its
``Outcomes``), and the ledger keeps the outbox in step:

- *stored*: the row is removed from the outbox (in runs, every few hundred acks or when idle);
- *in doubt*: the failure is recorded on the row and the oldest seq in doubt is kept in
  :attr:`Ledger.rewind_from`, from which the publisher sends again;
- *set aside*: refused for good; the row stays in the outbox marked so, and is never sent again;
- *parked*: a definite refusal that may be cured (no stream, permission denied). The event and every
  later event of its deployment are skipped for this pass (*held back*), then all are tried again.

A tracked event's outcome (its :class:`~cloudstation.events.ackwindow.Ack` or the error that keeps it)
is kept for :meth:`Ledger.outcome`. A full disk or a broken outbox loses only the diagnosis, never an
event: it is warned about once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

from cloudstation.errors import DeliveryError, OutboxError, OutboxFullError, RefusedError
from cloudstation.events.ackwindow import Ack
from cloudstation.events.outbox import Outbox, StoredEvent

log = logging.getLogger("cloudstation.events.publisher")  # the whole delivery path logs under one name

_REMOVE_EVERY = 512


class NoStreamError(DeliveryError):
    """No stream covers the subject."""


@dataclass
class DeliveryReport:
    """What :meth:`Publisher.close` could and could not deliver."""

    delivered: int
    undelivered: int
    outbox_path: str
    errors: list[str] = field(default_factory=list)
    set_aside: int = 0

    @property
    def complete(self) -> bool:
        return self.undelivered == 0


class Ledger:
    """The outcomes of one process's events; ``wake`` nudges the delivery loop after a failure."""

    def __init__(self, outbox: Outbox, *, wake: Callable[[], None]) -> None:
        self.outbox = outbox
        self.delivered = 0
        self.undelivered = 0  # this process's events not yet acknowledged (parked ones included)
        self.results: dict[int, Ack | DeliveryError] = {}
        self.tracked: set[int] = set()
        self.definite_errors: dict[int, DeliveryError] = {}
        self.set_aside_errors: list[str] = []
        self.rewind_from: int | None = None  # the oldest seq in doubt: send again from there
        self.progress = asyncio.Event()  # set at every outcome
        self.parked_at = 0.0
        self._wake = wake
        self._parked: set[int] = set()
        # deployment id -> the refusal that holds its later events back for this pass
        self._parked_deployments: dict[str, DeliveryError] = {}
        self._held: dict[int, DeliveryError] = {}  # tracked events held behind a refused one
        self._to_remove: list[int] = []
        self._outbox_warned = False

    # -- the ack window's outcomes -----------------------------------------------------------------

    def stored(self, item: StoredEvent, ack: Ack | None) -> None:
        """``item`` is stored (a PubAck, or a fast-ingest ack covering it: ``ack`` None)."""
        self._to_remove.append(item.seq)
        self.undelivered -= 1
        self.delivered += 1
        if ack is not None and item.seq in self.tracked:
            self.results[item.seq] = ack
        self.progress.set()

    def retry_from(self, item: StoredEvent, reason: str) -> None:
        """An ambiguous failure: send everything from ``item`` on again (same msg ids)."""
        self.record_failure(item, reason)
        if self.rewind_from is None or item.seq < self.rewind_from:
            self.rewind_from = item.seq
        self._wake()  # the delivery loop may be idle: the batch was sent before the failure came

    def set_aside(self, item: StoredEvent, reason: str) -> None:
        """A refusal for good: keep the event in the outbox, never send it again, block nothing."""
        log.warning("event set aside (never resent; `cs events pending` shows it): %s", reason)
        try:
            self.outbox.set_aside(item.seq, reason)
        except (OutboxError, OutboxFullError) as exc:
            self.warn_outbox(exc)
            self._parked.add(item.seq)  # at least this process never sends it again
        self.set_aside_errors.append(reason)
        self.undelivered -= 1
        if item.seq in self.tracked:
            self.results[item.seq] = RefusedError(f"{reason}; the event is set aside in {self.outbox.path}")
        self.progress.set()

    # -- parking -----------------------------------------------------------------------------------

    @property
    def parked(self) -> bool:
        return bool(self._parked)

    def skips(self, item: StoredEvent) -> bool:
        """Whether ``item`` is not sent in this pass: parked, or held behind its deployment's refusal."""
        if item.seq in self._parked:
            return True
        dep = item.event.deployment_id
        if dep and dep in self._parked_deployments:
            self.park(item, None)
            return True
        return False

    async def park_uncovered(
        self, suspects: Iterable[StoredEvent], stream_covers: Callable[[str], Awaitable[bool]]
    ) -> None:
        """Park each "no responders" suspect whose subject no stream covers; the others are simply retried
        (a clustered stream electing its leader answers "no responders" for a moment too)."""
        checked: dict[str, bool] = {}
        for item in suspects:
            subject = item.event.subject
            if subject not in checked:
                checked[subject] = await stream_covers(subject)
            if not checked[subject]:
                self.park(item, NoStreamError(f"no JetStream stream covers subject {subject!r}: run `cs nats setup`"))

    def park(self, item: StoredEvent, err: DeliveryError | None) -> None:
        """A definite refusal (``err``), or held back behind one (None): keep the event, skip it and its
        deployment's later events this pass."""
        dep = item.event.deployment_id
        if err is not None:
            log.info("%s (event kept in %s)", err, self.outbox.path)
            self.record_failure(item, str(err))
            self.definite_errors[item.seq] = err
            if item.seq in self.tracked:
                self.results[item.seq] = err
            if dep:
                self._parked_deployments.setdefault(dep, err)
        elif item.seq in self.tracked:
            cause = self._parked_deployments.get(dep)
            self._held[item.seq] = DeliveryError(
                f"{item.event.subject}: held back behind an earlier event of deployment {dep} "
                f"that was not delivered ({cause})"
            )
        self._parked.add(item.seq)
        self.parked_at = time.monotonic()
        self.progress.set()

    def unpark(self) -> None:
        """A new pass: parked and held events are tried again."""
        self._parked.clear()
        self._parked_deployments.clear()
        self.definite_errors.clear()
        self._held.clear()

    # -- questions ---------------------------------------------------------------------------------

    def outcome(self, seq: int) -> Ack | DeliveryError | None:
        """What became of a tracked event: its PubAck, why it is not delivered, or None (still trying)."""
        result = self.results.get(seq)
        if result is not None or seq not in self._parked:
            return result
        return self._held.get(seq)

    def done(self, seqs: Collection[int] | None, in_flight: int) -> bool:
        """Whether ``seqs`` (None: every event of this process) are delivered, refused or parked."""
        if seqs is None:
            return self.undelivered - len(self._parked) <= 0 and not in_flight
        return all(s in self.results or s in self._parked for s in seqs)

    def report(self) -> DeliveryReport:
        errors = sorted({str(e) for e in self.definite_errors.values()}) + self.set_aside_errors
        try:
            undelivered = self.outbox.count()
            set_aside = self.outbox.count(set_aside=True)
        except (OutboxError, OutboxFullError):
            undelivered, set_aside = self.undelivered, len(self.set_aside_errors)
        return DeliveryReport(
            delivered=self.delivered,
            undelivered=undelivered,
            outbox_path=str(self.outbox.path),
            errors=errors,
            set_aside=set_aside,
        )

    # -- the outbox --------------------------------------------------------------------------------

    def record_failure(self, item: StoredEvent, reason: str) -> None:
        try:
            self.outbox.record_failure([item.seq], reason)
        except (OutboxError, OutboxFullError) as exc:  # only the diagnosis is lost
            self.warn_outbox(exc)

    def warn_outbox(self, exc: Exception) -> None:
        if not self._outbox_warned:
            self._outbox_warned = True
            log.warning("%s", exc)

    def flush_removals(self, *, when_due: bool = False) -> None:
        """Remove the acknowledged rows from the outbox (``when_due``: only once enough have gathered;
        a full disk then keeps them in memory until there is room)."""
        if when_due:
            if len(self._to_remove) >= _REMOVE_EVERY:
                try:
                    self.flush_removals()
                except OutboxFullError as exc:
                    self.warn_outbox(exc)
            return
        if self._to_remove:
            self.outbox.remove(self._to_remove)
            self._to_remove = []

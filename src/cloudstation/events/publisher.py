"""The only component that talks to NATS: delivers the outbox to JetStream, in order, exactly once.

One asyncio task per process reads this process's outbox rows in sequence order and publishes them:

- ``build.log`` lines are pipelined: up to ``window`` messages in flight, each with its own reply
  subject on one wildcard inbox subscription, so thousands of PubAcks can be outstanding. Where the
  server and stream allow it they go out as fast-ingest batches instead (``events/fastbatch.py``).
- Every other event is a *barrier*: it is published only after everything before it has been
  acknowledged, then alone: publish → PubAck → ``flush()`` bounded by the flush timeout (a flush
  failure is a warning: the PubAck already proves the event is stored).
- A row leaves the outbox only after its PubAck. A missing PubAck is ambiguous (the message may be
  stored), so the publisher rewinds to the oldest unacknowledged event and sends again with the same
  ``Nats-Msg-Id``; JetStream's duplicate window turns the repeats into no-ops.
- Every event passes :func:`~cloudstation.events.door.admit` twice: in :meth:`Publisher.submit`
  before it is journaled (a :class:`ContractError`, exit 2, against the server's ``max_payload`` as last
  known, else 1 MiB), and before it is sent (against the live ``max_payload``; rows journaled by an
  older ``cs`` included). An event refused there, or refused by JetStream for its size, is *set aside*:
  kept in the outbox, reported, never sent again, and blocking nothing.
- A definite refusal that may be cured (no stream for the subject, permission denied) parks the
  event, and every later event of the same deployment, for this pass; they stay in the outbox, are
  reported, and are tried again later (``cs nats setup`` may have fixed the cause meanwhile).
- Reconnects have no attempt limit while there is work; disconnect and reconnect are logged once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cloudstation.errors import AuthError, ContractError, DeliveryError, OutboxError, OutboxFullError, RefusedError
from cloudstation.events.contract import Event
from cloudstation.events.door import DEFAULT_MAX_PAYLOAD, admit
from cloudstation.events.fastbatch import FastIngest, server_supports, server_version
from cloudstation.events.outbox import Outbox, StoredEvent
from cloudstation.natsconn import NatsSettings

log = logging.getLogger("cloudstation.events.publisher")

DEFAULT_WINDOW = 2048
_BATCH = 1024
_FRESH_MAX = 8192
_REMOVE_EVERY = 512
_NO_TIMEOUT = 10 * 365 * 24 * 3600  # see _flush
# One connection attempt's bound (TCP, INFO, CONNECT/PONG); a busy machine can take seconds.
_CONNECT_TIMEOUT = 5
# A server that accepts but has not completed a connection for this long is reported as slow.
_SLOW_CONNECT_WARNING = 15.0


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


class NoStreamError(DeliveryError):
    """No stream covers the subject."""


class TlsError(DeliveryError):
    """The server's TLS certificate could not be verified: retrying cannot help."""


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


@dataclass(slots=True)
class _InFlight:
    item: StoredEvent
    sent_at: float
    barrier: asyncio.Future[Ack] | None


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
        self.window = max(1, window)
        self.retry_parked_after = retry_parked_after
        self.delivered = 0
        # A refusal that retrying cannot cure (credentials, permissions, an untrusted certificate).
        self.fatal: DeliveryError | None = None
        self.definite_errors: dict[int, DeliveryError] = {}

        self._nc: Any = None
        self._inbox = ""
        self._token = 0
        self._inflight: dict[str, _InFlight] = {}
        self._cursor = 0
        self._rewind_from: int | None = None
        self._to_remove: list[int] = []
        self._parked: set[int] = set()
        # deployment id -> the refusal that holds its later events back for this pass
        self._parked_deployments: dict[str, DeliveryError] = {}
        self._known_max_payload: int | None = None
        self._no_responders: dict[int, StoredEvent] = {}
        # Events this process just journaled, handed to the delivery loop without reading them back.
        self._fresh: dict[int, StoredEvent] = {}
        self._parked_at = 0.0
        self._undelivered = 0
        self._tracked: set[int] = set()
        self.results: dict[int, Ack | DeliveryError] = {}
        self._held: dict[int, DeliveryError] = {}  # tracked events held behind a refused one
        self.set_aside_errors: list[str] = []

        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._connected = asyncio.Event()
        self._auth_failed = asyncio.Event()
        self._was_disconnected = False
        self._outbox_warned = False
        self._unreachable_logged = False
        self._first_attempt_at: float | None = None
        self._tls_error: ssl.SSLCertVerificationError | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Future[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._fast: FastIngest | None = None  # fast-ingest batches on this connection, if the server has them

    # -- public API --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt events left by dead processes and start delivering in the background."""
        self._known_max_payload = self.outbox.known_max_payload()
        try:
            adopted = self.outbox.adopt_orphans()
        except OutboxFullError as exc:  # they stay with their dead owner for a later process
            self._warn_outbox(exc)
            adopted = 0
        if adopted:
            log.info("delivering %d event(s) left by an earlier process first", adopted)
        self._undelivered = self.outbox.count()
        self._task = asyncio.create_task(self._run(), name="cs-publisher")
        self._watchdog = asyncio.create_task(self._watch_timeouts(), name="cs-publisher-watchdog")

    def submit(self, events: Sequence[Event], *, track: bool = False) -> list[int]:
        """Journal ``events`` durably, then let the delivery task publish them. Returns their seqs.

        With ``track``, each event's PubAck (or definite error) is kept in :attr:`results`. An event
        that can never be delivered is refused here (:class:`ContractError`) and nothing is journaled.
        """
        limit = self.payload_limit
        for ev in events:
            admit(ev, limit)
        seqs = self.outbox.append(events)
        self._undelivered += len(seqs)
        if len(self._fresh) + len(seqs) <= _FRESH_MAX:
            now = time.time()
            for seq, ev in zip(seqs, events, strict=True):
                self._fresh[seq] = StoredEvent(seq, ev, now, 0)
        if track:
            self._tracked.update(seqs)
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
            if self._done(seqs):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self._progress.wait()

    @property
    def undelivered(self) -> int:
        """Events of this process not yet acknowledged (parked ones included)."""
        return self._undelivered

    @property
    def max_payload(self) -> int | None:
        """The server's max_payload once known: from INFO when connected, else as remembered in the
        outbox from an earlier connection (by any process sharing it)."""
        return int(self._nc.max_payload) if self._nc is not None else self._known_max_payload

    @property
    def payload_limit(self) -> int:
        """The largest message the door lets in: the server's max_payload, as last known, else 1 MiB."""
        return self.max_payload or DEFAULT_MAX_PAYLOAD

    def outcome(self, seq: int) -> Ack | DeliveryError | None:
        """What became of a tracked event: its PubAck, why it is not delivered, or None (still trying)."""
        result = self.results.get(seq)
        if result is not None or seq not in self._parked:
            return result
        return self._held.get(seq)

    async def close(self, timeout: float | None = None) -> DeliveryReport:
        """Wait (bounded) for everything to be acknowledged, then flush, drain and close."""
        timeout = self.settings.delivery_timeout if timeout is None else timeout
        errors: list[str] = []
        try:
            await self.wait(timeout=timeout)
        except DeliveryError as exc:
            errors.append(str(exc))
        self._closing = True
        self._wake.set()
        for task in (self._task, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._flush_removals()
        nc, self._nc = self._nc, None
        if nc is not None:
            if nc.is_connected:
                try:
                    self._nc = nc
                    await self._flush()
                except Exception as exc:
                    log.warning("final flush failed: %s", self._describe(exc))
                finally:
                    self._nc = None
            with contextlib.suppress(Exception):
                await nc.drain()  # bounded by the drain_timeout connect option
            with contextlib.suppress(Exception):
                await nc.close()
        for flush in list(self._flushes):
            flush.cancel()
        errors.extend(sorted({str(e) for e in self.definite_errors.values()}))
        errors.extend(self.set_aside_errors)
        try:
            undelivered = self.outbox.count()
            set_aside = self.outbox.count(set_aside=True)
        except (OutboxError, OutboxFullError):
            undelivered, set_aside = self._undelivered, len(self.set_aside_errors)
        return DeliveryReport(
            delivered=self.delivered,
            undelivered=undelivered,
            outbox_path=str(self.outbox.path),
            errors=errors,
            set_aside=set_aside,
        )

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the delivery loop -------------------------------------------------------------------------

    def _done(self, seqs: Collection[int] | None) -> bool:
        if seqs is None:
            return self._undelivered - len(self._parked) <= 0 and not self._inflight
        return all(s in self.results or s in self._parked for s in seqs)

    async def _run(self) -> None:
        backoff = _Backoff()
        while not self._closing:
            try:
                await self._ensure_connected()
            except (AuthError, TlsError) as exc:
                self.fatal = exc
                self._progress.set()
                return
            except DeliveryError as exc:
                log.debug("%s; retrying", exc)
                await asyncio.sleep(backoff.next())
                continue
            try:
                batch = self._next_batch()
                if not batch:
                    self._flush_removals()
            except OutboxFullError as exc:
                self._warn_outbox(exc)
                await asyncio.sleep(1.0)
                continue
            if not batch:
                if self._fast is not None:  # an idle moment: close the open fast-ingest batch
                    await self._fast.commit()
                    self._flush_removals()
                if self._rewind_from is not None:  # a failure reported after its batch was sent
                    await self._rewind(backoff)
                    continue
                if self._parked and time.monotonic() - self._parked_at > self.retry_parked_after:
                    self._unpark()
                    continue
                self._wake.clear()
                self._progress.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.retry_parked_after):
                        await self._wake.wait()
                continue
            await self._deliver(batch)
            if self._rewind_from is not None:
                await self._rewind(backoff)
            else:
                backoff.reset()

    async def _rewind(self, backoff: _Backoff) -> None:
        """Send everything again from the oldest event in doubt, once nothing is in flight."""
        await self._settle()
        self._flush_removals()
        await self._classify_no_responders()
        assert self._rewind_from is not None
        self._cursor = self._rewind_from - 1
        self._rewind_from = None
        delay = backoff.next()
        log.debug("rewinding to seq %d after %.2fs", self._cursor + 1, delay)
        await asyncio.sleep(delay)

    def _next_batch(self) -> list[StoredEvent]:
        """The next events after the cursor: from memory when just submitted, else from the outbox."""
        seq = self._cursor + 1
        if seq in self._fresh:
            batch: list[StoredEvent] = []
            while seq in self._fresh and len(batch) < _BATCH:
                batch.append(self._fresh.pop(seq))
                seq += 1
            return batch
        self._fresh.clear()  # after a gap, a rewind or a retry pass the outbox is the truth
        return self.outbox.next_batch(self._cursor, _BATCH)

    async def _deliver(self, batch: list[StoredEvent]) -> None:
        for item in batch:
            if self._rewind_from is not None or self._closing:
                return
            ev = item.event
            if item.seq in self._parked:
                self._cursor = item.seq
                continue
            if ev.deployment_id and ev.deployment_id in self._parked_deployments:
                self._park(item, None)
                self._cursor = item.seq
                continue
            if not self._nc.is_connected:
                await self._settle()
                return  # the loop reconnects, rewinds if needed, and comes back here
            if ev.is_barrier:
                await self._settle()
                if self._rewind_from is not None:
                    return
                await self._publish_barrier(item)
            elif self._fast is not None and self._fast.takes(item, self._tracked):
                if not self._refused(item):  # the door again: a poison row left in the outbox is set aside
                    await self._fast.add(item)
            else:
                while len(self._inflight) >= self.window:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                if self._rewind_from is not None:
                    return
                await self._send(item, None)
            self._cursor = item.seq
            if len(self._to_remove) >= _REMOVE_EVERY:
                try:
                    self._flush_removals()
                except OutboxFullError as exc:  # kept in memory; removed once there is room
                    self._warn_outbox(exc)

    async def _publish_barrier(self, item: StoredEvent) -> None:
        fut: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        if not await self._send(item, fut):
            return
        try:
            await fut
        except DeliveryError:
            return  # parked or rewound by whoever failed the future
        try:
            await self._flush()
        except Exception as exc:
            log.warning(
                "flush after %s failed (the event is acknowledged): %s", item.event.subject, self._describe(exc)
            )

    async def _flush(self) -> None:
        """``flush()`` bounded by the flush timeout, without ever cancelling nats-py's PING future.

        nats-py cancels that future when its own timeout fires (or its caller is cancelled), and a
        PONG arriving later then kills the connection's read loop. So nats-py gets no timeout of
        its own and is shielded from ours; a late PONG just completes a forgotten task.
        """
        task = asyncio.ensure_future(self._nc.flush(timeout=_NO_TIMEOUT))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        async with asyncio.timeout(self.settings.flush_timeout):
            await asyncio.shield(task)

    def _refused(self, item: StoredEvent) -> str:
        """The door before each send: why ``item`` can never be delivered (it is set aside), else ``""``."""
        try:
            admit(item.event, self._nc.max_payload)
        except ContractError as exc:
            self._set_aside(item, str(exc))
            return str(exc)
        return ""

    async def _send(self, item: StoredEvent, barrier: asyncio.Future[Ack] | None) -> bool:
        ev = item.event
        refusal = self._refused(item)
        if refusal:
            _fail(barrier, RefusedError(refusal))
            return False
        self._token += 1
        token = str(self._token)
        self._inflight[token] = _InFlight(item, time.monotonic(), barrier)
        self._settled.clear()
        try:
            await self._nc.publish(ev.subject, ev.data, reply=self._inbox + token, headers=ev.headers())
        except Exception as exc:
            self._inflight.pop(token, None)
            self._after_removal()
            self._retry_from(item, f"publish failed: {self._describe(exc)}")
            if barrier is not None and not barrier.done():
                barrier.set_exception(DeliveryError("publish failed"))
            return False
        return True

    async def _on_reply(self, msg: Any) -> None:
        entry = self._inflight.pop(msg.subject[len(self._inbox) :], None)
        if entry is None:
            return  # a late reply after a timeout: the event is sent again and de-duplicated
        self._after_removal()
        item = entry.item
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            # No responders: either no stream covers the subject (definite) or a clustered stream is
            # electing a leader (transient). The rewind step asks JetStream which one it is.
            self._no_responders[item.seq] = item
            self._retry_from(item, "no responders for the subject")
            _fail(entry.barrier, DeliveryError("no responders"))
            return
        try:
            resp = _ACK_DECODER.decode(msg.data)
        except msgspec.DecodeError:
            self._retry_from(item, "unreadable PubAck")
            _fail(entry.barrier, DeliveryError("unreadable PubAck"))
            return
        if resp.error is not None:
            desc = str(resp.error.get("description", resp.error))
            err = DeliveryError(f"{item.event.subject}: JetStream refused the event: {desc}")
            if "size" in desc or "payload" in desc:
                self._set_aside(item, str(err))
            else:
                self._retry_from(item, desc)
            _fail(entry.barrier, err)
            return
        self._acked(item, Ack(stream=resp.stream, seq=resp.seq, duplicate=resp.duplicate), entry.barrier)

    def _acked(self, item: StoredEvent, ack: Ack | None, barrier: asyncio.Future[Ack] | None) -> None:
        """``item`` is stored (a PubAck, or a fast-ingest ack covering it: ``ack`` None)."""
        self._to_remove.append(item.seq)
        self._undelivered -= 1
        self.delivered += 1
        if ack is not None and item.seq in self._tracked:
            self.results[item.seq] = ack
        if barrier is not None and ack is not None and not barrier.done():
            barrier.set_result(ack)
        self._progress.set()

    # -- failure handling --------------------------------------------------------------------------

    def _after_removal(self) -> None:
        if len(self._inflight) < self.window:
            self._slot_free.set()
        if not self._inflight:
            self._settled.set()

    def _retry_from(self, item: StoredEvent, reason: str) -> None:
        """An ambiguous failure: send everything from ``item`` on again (same msg ids)."""
        self._record_failure(item, reason)
        if self._rewind_from is None or item.seq < self._rewind_from:
            self._rewind_from = item.seq
        self._slot_free.set()
        self._wake.set()  # the delivery loop may be idle: the batch was sent before the failure came

    def _record_failure(self, item: StoredEvent, reason: str) -> None:
        try:
            self.outbox.record_failure([item.seq], reason)
        except (OutboxError, OutboxFullError) as exc:  # only the diagnosis is lost
            self._warn_outbox(exc)

    def _warn_outbox(self, exc: Exception) -> None:
        if not self._outbox_warned:
            self._outbox_warned = True
            log.warning("%s", exc)

    def _park(self, item: StoredEvent, err: DeliveryError | None) -> None:
        """A definite refusal: keep the event, skip it and its deployment's later events this pass."""
        dep = item.event.deployment_id
        if err is not None:
            log.info("%s (event kept in %s)", err, self.outbox.path)
            self._record_failure(item, str(err))
            self.definite_errors[item.seq] = err
            if item.seq in self._tracked:
                self.results[item.seq] = err
            if dep:
                self._parked_deployments.setdefault(dep, err)
        elif item.seq in self._tracked:
            cause = self._parked_deployments.get(dep)
            self._held[item.seq] = DeliveryError(
                f"{item.event.subject}: held back behind an earlier event of deployment {dep} "
                f"that was not delivered ({cause})"
            )
        self._parked.add(item.seq)
        self._parked_at = time.monotonic()
        self._progress.set()

    def _set_aside(self, item: StoredEvent, reason: str) -> None:
        """A refusal for good: keep the event in the outbox, never send it again, block nothing."""
        log.warning("event set aside (never resent; `cs events pending` shows it): %s", reason)
        try:
            self.outbox.set_aside(item.seq, reason)
        except (OutboxError, OutboxFullError) as exc:
            self._warn_outbox(exc)
            self._parked.add(item.seq)  # at least this process never sends it again
        self.set_aside_errors.append(reason)
        self._undelivered -= 1
        if item.seq in self._tracked:
            self.results[item.seq] = RefusedError(f"{reason}; the event is set aside in {self.outbox.path}")
        self._progress.set()

    async def _classify_no_responders(self) -> None:
        """Park the events whose subject no stream covers; the others are simply retried."""
        import nats.js.errors

        suspects, self._no_responders = self._no_responders, {}
        checked: dict[str, bool] = {}
        for item in suspects.values():
            subject = item.event.subject
            if subject not in checked:
                try:
                    await self._nc.jetstream().find_stream_name_by_subject(subject)
                    checked[subject] = True
                except nats.js.errors.NotFoundError:
                    checked[subject] = False
                except Exception:
                    checked[subject] = True  # cannot tell now: retry
            if not checked[subject]:
                self._park(item, NoStreamError(f"no JetStream stream covers subject {subject!r}: run `cs nats setup`"))

    def _unpark(self) -> None:
        self._parked.clear()
        self._parked_deployments.clear()
        self.definite_errors.clear()
        self._held.clear()
        self._cursor = 0

    async def _settle(self) -> None:
        """Wait until nothing is in flight (each entry is acknowledged, refused or timed out)."""
        if self._fast is not None:
            await self._fast.commit()
        while self._inflight:
            self._settled.clear()
            await self._settled.wait()

    async def _watch_timeouts(self) -> None:
        timeout = self.settings.publish_timeout
        while True:
            await asyncio.sleep(min(0.1, timeout / 4))
            if not self._inflight:
                continue
            now = time.monotonic()
            expired: list[tuple[str, _InFlight]] = []
            for token, entry in self._inflight.items():  # oldest first: stop at the first fresh one
                if now - entry.sent_at <= timeout:
                    break
                expired.append((token, entry))
            if not expired:
                continue
            for token, entry in expired:
                del self._inflight[token]
                _fail(entry.barrier, DeliveryError("PubAck timeout"))
            self._retry_from(expired[0][1].item, f"no PubAck within {timeout:g}s")
            self._after_removal()

    def _expire_inflight(self, reason: str) -> None:
        if not self._inflight:
            return
        entries = list(self._inflight.values())
        self._inflight.clear()
        for entry in entries:
            _fail(entry.barrier, DeliveryError(reason))
        self._retry_from(entries[0].item, reason)
        self._after_removal()

    def _flush_removals(self) -> None:
        if self._to_remove:
            self.outbox.remove(self._to_remove)
            self._to_remove = []

    # -- connection --------------------------------------------------------------------------------

    async def _ensure_connected(self) -> None:
        if self._nc is not None:
            if self._nc.is_connected:
                return
            if not self._nc.is_closed:
                await self._wait_connected()
                return
            self._nc = None
        await self._connect()

    async def _wait_connected(self) -> None:
        self._connected.clear()
        while not self._nc.is_connected:
            if self._auth_failed.is_set():
                raise AuthError("the NATS server refused our credentials (authorization violation)")
            if self._nc.is_closed:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._connected.wait()

    async def _connect(self) -> None:
        """One bounded connection attempt (each server tried twice); the delivery loop retries.

        nats-py's own endless initial-connect loop ignores cancellation, which left ``cs`` hanging
        at exit when the server was down; so the attempt is bounded, and only once connected is the
        reconnect limit lifted (reconnects are then endless while the process has work).
        """
        from nats.aio.client import Client

        if self._first_attempt_at is None:
            self._first_attempt_at = time.monotonic()
        nc = Client()
        opts = self.settings.connect_options()
        opts.update(
            allow_reconnect=True,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            connect_timeout=_CONNECT_TIMEOUT,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            pending_size=8 * 1024 * 1024,
            drain_timeout=max(1, int(self.settings.flush_timeout)),
        )
        try:
            await self._bounded_connect(nc, opts)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            if self._auth_failed.is_set():
                raise AuthError("the NATS server refused our credentials (authorization violation)") from None
            if self._tls_error is not None:
                detail = self._tls_error.verify_message
                reason = f"certificate verify failed: {detail}" if detail else "certificate verify failed"
                raise TlsError(
                    f"TLS: the NATS server's certificate is not trusted ({reason}); "
                    "set NATS_CA_FILE to the CA that signed it"
                ) from None
            raise DeliveryError(f"cannot connect to NATS: {self._describe(exc)}") from None
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 0.5
        self._inbox = nc.new_inbox() + "."
        await nc.subscribe(self._inbox + "*", cb=self._on_reply)
        self._fast = None
        if self.settings.fast_ingest and server_supports(server_version(nc)):
            self._fast = FastIngest(nc, self, _InFlight)
            await self._fast.start()
        self._nc = nc
        with contextlib.suppress(OutboxError, OutboxFullError):
            self.outbox.remember_max_payload(int(nc.max_payload))
        if self._was_disconnected or self._unreachable_logged:
            log.warning("connected to NATS at %s", _server_of(nc))
            self._was_disconnected = False
        else:
            log.debug("connected to NATS at %s", _server_of(nc))

    async def _bounded_connect(self, nc: Any, opts: dict[str, Any]) -> None:
        """``nc.connect`` that gives up at a definite refusal or after a bound.

        nats-py reports a refused certificate or credentials through ``error_cb`` and, for TLS,
        then waits forever; so the attempt is watched and abandoned as soon as one is reported.
        """
        task = asyncio.ensure_future(nc.connect(**opts))
        deadline = time.monotonic() + 5.0 + 5.0 * len(self.settings.servers)
        try:
            while not task.done():
                if self._tls_error is not None or self._auth_failed.is_set() or time.monotonic() > deadline:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        async with asyncio.timeout(1.0):
                            await task
                    raise DeliveryError("connection attempt abandoned")
                await asyncio.wait({task}, timeout=0.05)
        except BaseException:
            task.cancel()
            # Its failure is ours to read, or asyncio prints "Task exception was never retrieved".
            if task.done():
                _retrieve(task)
            else:
                task.add_done_callback(_retrieve)
            raise
        task.result()

    async def _on_error(self, exc: Exception) -> None:
        import nats.errors

        if isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in str(exc).lower():
            self._auth_failed.set()
            return
        text = str(exc)
        lowered = text.lower()  # nats-py words it "permissions violation for publish to ..."
        if isinstance(exc, ssl.SSLCertVerificationError):
            self._tls_error = exc
            return
        if "permissions violation for publish" in lowered:
            for token, entry in list(self._inflight.items()):
                if f'"{entry.item.event.subject}"' in text or entry.item.event.subject in text:
                    del self._inflight[token]
                    err = AuthError(f"permission denied to publish to {entry.item.event.subject!r}")
                    self._park(entry.item, err)
                    _fail(entry.barrier, err)
            self._after_removal()
            return
        if "permissions violation" in lowered:
            self.fatal = AuthError(f"NATS permission refused: {self.settings.redact(text)}")
            self._progress.set()
            return
        if self._nc is None:
            self._report_connect_failure(exc)
        log.debug("nats: %s", self._describe(exc))

    def _report_connect_failure(self, exc: Exception) -> None:
        """Warn once, and only with the truth: a refused or unroutable connection means the server
        cannot be reached; a timeout (no INFO or PONG in time) means it is slow, which under load is
        normal for a few seconds, so that is said only when it lasts."""
        now = time.monotonic()
        if self._first_attempt_at is None:
            self._first_attempt_at = now
        if self._unreachable_logged:
            return
        if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
            self._unreachable_logged = True
            log.warning(
                "cannot reach NATS at %s yet (%s); events are kept in %s and retried",
                self.settings.shown_servers,
                self._describe(exc),
                self.outbox.path,
            )
        elif now - self._first_attempt_at >= _SLOW_CONNECT_WARNING:
            self._unreachable_logged = True
            log.warning(
                "NATS at %s has not completed a connection in %.0fs (slow or overloaded?); events are kept "
                "in %s and retried",
                self.settings.shown_servers,
                now - self._first_attempt_at,
                self.outbox.path,
            )

    def _describe(self, exc: BaseException) -> str:
        """A library error as one line, without any credential of the connection."""
        return self.settings.redact(describe(exc))

    async def _on_disconnected(self) -> None:
        if self._nc is None:
            return  # a connection attempt that failed: never connected, so never disconnected
        if not self._was_disconnected and not self._closing:
            log.warning("disconnected from NATS; events are kept in %s and retried", self.outbox.path)
        self._was_disconnected = True
        # PubAcks for messages sent on the lost connection can never arrive: retry them now rather
        # than after the PubAck timeout (the ones that were stored are de-duplicated).
        self._expire_inflight("connection lost before the PubAck")

    async def _on_reconnected(self) -> None:
        if self._was_disconnected:
            log.warning("reconnected to NATS at %s", _server_of(self._nc))
        self._was_disconnected = False
        self._connected.set()
        self._wake.set()


class _Backoff:
    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first, self.cap, self.current = first, cap, 0.0

    def next(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.first)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _fail(fut: asyncio.Future[Ack] | None, err: DeliveryError) -> None:
    if fut is not None and not fut.done():
        fut.set_exception(err)
        fut.exception()  # mark retrieved: the waiter may already be gone


def _server_of(nc: Any) -> str:
    try:
        url = nc.connected_url
        return f"{url.hostname}:{url.port}"
    except Exception:
        return "?"


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

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
- A definite refusal (no stream for the subject, permission denied, payload too large) parks the event,
  and every later event of the same deployment, for this pass; they stay in the outbox, are reported,
  and are tried again later (``cs nats setup`` may have fixed the cause meanwhile).
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

from cloudstation.errors import AuthError, DeliveryError
from cloudstation.events.contract import Event
from cloudstation.events.fastbatch import FastIngest, server_supports, server_version
from cloudstation.events.outbox import Outbox, StoredEvent
from cloudstation.natsconn import NatsSettings

log = logging.getLogger("cloudstation.events.publisher")

DEFAULT_WINDOW = 2048
_BATCH = 1024
_FRESH_MAX = 8192
_REMOVE_EVERY = 512
_NO_TIMEOUT = 10 * 365 * 24 * 3600  # see _flush
_HEADER_OVERHEAD = 160  # bytes of headers and protocol line we allow for, on top of the payload


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
        self._parked_deployments: set[str] = set()
        self._no_responders: dict[int, StoredEvent] = {}
        # Events this process just journaled, handed to the delivery loop without reading them back.
        self._fresh: dict[int, StoredEvent] = {}
        self._parked_at = 0.0
        self._undelivered = 0
        self._tracked: set[int] = set()
        self.results: dict[int, Ack | DeliveryError] = {}

        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._connected = asyncio.Event()
        self._auth_failed = asyncio.Event()
        self._was_disconnected = False
        self._unreachable_logged = False
        self._tls_error: ssl.SSLCertVerificationError | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Future[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._fast: FastIngest | None = None  # fast-ingest batches on this connection, if the server has them

    # -- public API --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt events left by dead processes and start delivering in the background."""
        adopted = self.outbox.adopt_orphans()
        if adopted:
            log.info("delivering %d event(s) left by an earlier process first", adopted)
        self._undelivered = self.outbox.count()
        self._task = asyncio.create_task(self._run(), name="cs-publisher")
        self._watchdog = asyncio.create_task(self._watch_timeouts(), name="cs-publisher-watchdog")

    def submit(self, events: Sequence[Event], *, track: bool = False) -> list[int]:
        """Journal ``events`` durably, then let the delivery task publish them. Returns their seqs.

        With ``track``, each event's PubAck (or definite error) is kept in :attr:`results`.
        """
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
        """The server's max_payload (from INFO) once connected."""
        return int(self._nc.max_payload) if self._nc is not None else None

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
                    log.warning("final flush failed: %s", _describe(exc))
                finally:
                    self._nc = None
            with contextlib.suppress(Exception):
                await nc.drain()  # bounded by the drain_timeout connect option
            with contextlib.suppress(Exception):
                await nc.close()
        for flush in list(self._flushes):
            flush.cancel()
        errors.extend(sorted({str(e) for e in self.definite_errors.values()}))
        return DeliveryReport(
            delivered=self.delivered,
            undelivered=self.outbox.count(),
            outbox_path=str(self.outbox.path),
            errors=errors,
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
            batch = self._next_batch()
            if not batch:
                if self._fast is not None:
                    await self._fast.commit()
                self._flush_removals()
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
                await self._settle()
                self._flush_removals()
                await self._classify_no_responders()
                self._cursor = self._rewind_from - 1
                self._rewind_from = None
                delay = backoff.next()
                log.debug("rewinding to seq %d after %.2fs", self._cursor + 1, delay)
                await asyncio.sleep(delay)
            else:
                backoff.reset()

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
                self._flush_removals()

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
            log.warning("flush after %s failed (the event is acknowledged): %s", item.event.subject, _describe(exc))

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

    async def _send(self, item: StoredEvent, barrier: asyncio.Future[Ack] | None) -> bool:
        ev = item.event
        limit = self._nc.max_payload
        if len(ev.data) + _HEADER_OVERHEAD > limit:
            self._park(
                item,
                DeliveryError(
                    f"{ev.subject}: payload of {len(ev.data)} bytes exceeds the server's max_payload ({limit})"
                ),
            )
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
            self._retry_from(item, f"publish failed: {_describe(exc)}")
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
                self._park(item, err)
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
        self.outbox.record_failure([item.seq], reason)
        if self._rewind_from is None or item.seq < self._rewind_from:
            self._rewind_from = item.seq
        self._slot_free.set()

    def _park(self, item: StoredEvent, err: DeliveryError | None) -> None:
        """A definite refusal: keep the event, skip it and its deployment's later events this pass."""
        if err is not None:
            log.info("%s (event kept in %s)", err, self.outbox.path)
            self.outbox.record_failure([item.seq], str(err))
            self.definite_errors[item.seq] = err
            if item.seq in self._tracked:
                self.results[item.seq] = err
        self._parked.add(item.seq)
        if item.event.deployment_id:
            self._parked_deployments.add(item.event.deployment_id)
        self._parked_at = time.monotonic()
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

        nc = Client()
        opts = self.settings.connect_options()
        opts.update(
            allow_reconnect=True,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            connect_timeout=2,
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
            raise DeliveryError(f"cannot connect to NATS: {_describe(exc)}") from None
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 0.5
        self._inbox = nc.new_inbox() + "."
        await nc.subscribe(self._inbox + "*", cb=self._on_reply)
        self._fast = None
        if self.settings.fast_ingest and server_supports(server_version(nc)):
            self._fast = FastIngest(nc, self, _InFlight)
            await self._fast.start()
        self._nc = nc
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
            self.fatal = AuthError(f"NATS permission refused: {text}")
            self._progress.set()
            return
        if self._nc is None and not self._unreachable_logged:
            self._unreachable_logged = True
            servers = ",".join(self.settings.servers)
            log.warning("cannot reach NATS at %s yet; events are kept in %s and retried", servers, self.outbox.path)
        log.debug("nats: %s", _describe(exc))

    async def _on_disconnected(self) -> None:
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


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

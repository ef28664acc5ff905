"""JetStream fast-ingest batches (ADR-50, nats-server >= 2.14, stream ``allow_batched``) for log lines.

Spoken over the Publisher's own nats-py connection. A batch is a run of ordinary publishes whose reply
subject carries the protocol: ``<root>.<batch id>.<flow>.fail.<batch seq>.<op>.$FI`` (op 0 starts the
batch, 1 appends, 3 ends it without storing the end marker). The server stores each message as it
arrives and answers on one wildcard subscription:

- ``{"type":"ack","seq":N,"msgs":F}``: messages 1..N of the batch are stored (or were duplicates of
  stored ones: every message keeps its ``Nats-Msg-Id``); the server acks at least every F messages;
- ``{"type":"gap"...}`` / ``{"type":"err"...}`` / ``{"error":...}``: the batch is over (gap mode
  ``fail``); ``{"error":{"err_code":10205}}`` on the first message means the stream has no
  ``allow_batched``;
- the final PubAck ``{"stream","seq","batch","count"}`` after the end marker: everything is stored.
  ``seq`` is 0 when every message was a duplicate (a resend after a crash): that is a success too.

Exactly-once with the outbox: a row is forgotten only once an ack covers it. Anything ambiguous (a
gap, an error, a lost connection, no progress within the publish timeout) expires the batch; the
Publisher rewinds to the oldest unacknowledged row and sends it again in a new batch, with the same
msg ids, which JetStream's duplicate window turns into no-ops. One entry of the Publisher's
:class:`~cloudstation.events.ackwindow.AckWindow` stands for the whole open batch (its ``item`` is the
oldest unacknowledged row), so the window's settle, timeout watch and disconnect handling cover
batches unchanged. Only the window's public methods are used.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cloudstation.events.ackwindow import AckWindow
from cloudstation.events.contract import HEADER_MSG_ID, Event, EventKind
from cloudstation.events.outbox import StoredEvent

log = logging.getLogger("cloudstation.events.publisher")

MIN_SERVER_VERSION = (2, 14, 0)
DEFAULT_FLOW = 256  # the server acks at least every FLOW messages
OUTSTANDING_ACKS = 4  # at most FLOW * OUTSTANDING_ACKS messages unacknowledged
_HEADER_OVERHEAD = 200  # headers + protocol line + the longer reply subject
_ERR_NOT_ENABLED = 10205
_OP_START, _OP_APPEND, _OP_END = 0, 1, 3
_HPUB = b"HPUB %b %b %d %d\r\nNATS/1.0\r\n" + HEADER_MSG_ID.encode() + b": %b%b%b\r\n"


class _Reply(msgspec.Struct):
    type: str = ""
    seq: int = 0
    msgs: int = 0
    last_seq: int = 0
    stream: str = ""
    batch: str = ""
    count: int = 0
    error: dict[str, Any] | None = None


_DECODER = msgspec.json.Decoder(_Reply)


def _never() -> bool:
    return False


def server_supports(version: str | None) -> bool:
    """Whether a server of ``version`` (``2.15.1``, ``2.14.0-RC.1``) speaks fast ingest."""
    if not version:
        return False
    parts: list[int] = []
    for token in version.split("-", 1)[0].split(".")[:3]:
        digits = "".join(ch for ch in token if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts) >= MIN_SERVER_VERSION


def server_version(nc: Any) -> str:
    """The version the connected server announced in its INFO (``""`` if unknown)."""
    info = getattr(nc, "_server_info", None) or {}
    return str(info.get("version", ""))


def which_path(
    *, enabled: bool, server_version: str | None, stream: str | None, allow_batched: bool | None
) -> tuple[bool, str]:
    """The path log lines take, and why (for ``cs nats check``)."""
    if not enabled:
        return False, "pipelined publishes (fast-ingest batches turned off by CS_FAST_INGEST=off)"
    if not server_supports(server_version):
        return False, f"pipelined publishes (server {server_version or '?'} has no fast-ingest batches: needs 2.14+)"
    if stream is None:
        return False, "pipelined publishes (no stream covers build.log yet: run `cs nats setup`)"
    if not allow_batched:
        return False, f"pipelined publishes (stream {stream} has allow_batched off: `cs nats setup` turns it on)"
    return True, f"fast-ingest batches (server {server_version}, stream {stream} has allow_batched)"


@dataclass(eq=False)
class _Batch:
    token: str
    prefix: str
    subject: str
    sent: int = 0  # batch seq of the last message sent
    acked: int = 0  # highest batch seq acknowledged
    started: bool = False
    unacked: deque[StoredEvent] = field(default_factory=deque)


class FastIngest:
    """Fast-ingest batches on one connection. The Publisher calls :meth:`add` and :meth:`commit`."""

    def __init__(self, nc: Any, window: AckWindow, *, flow: int = DEFAULT_FLOW) -> None:
        self._nc = nc
        self._window = window
        self.flow = flow
        self._limit = flow * OUTSTANDING_ACKS
        self._root = nc.new_inbox()
        self._batches: dict[str, _Batch] = {}
        self._open: _Batch | None = None
        self._shapes: dict[tuple[EventKind, str, str], tuple[bytes, int, bytes]] = {}
        self.enabled = True
        self.batches = 0  # batches started (for tests and benches)

    async def start(self) -> None:
        await self._nc.subscribe(self._root + ".>", cb=self._on_reply)

    def takes(self, item: StoredEvent, tracked: Collection[int]) -> bool:
        """Log lines whose PubAck nobody waits for, while the stream accepts batches."""
        return (
            self.enabled
            and item.event.kind is EventKind.BUILD_LOG
            and item.seq not in tracked
            and len(item.event.data) + _HEADER_OVERHEAD <= self._nc.max_payload
        )

    async def add(self, item: StoredEvent) -> None:
        """Publish ``item`` in the open batch (starting one if needed); waits for window space."""
        await self.add_run([item], 0, (), _never)

    async def add_run(
        self, items: Sequence[StoredEvent], start: int, tracked: Collection[int], interrupted: Callable[[], bool]
    ) -> int:
        """Publish ``items[start:]`` in order, as far as :meth:`takes` them, in the open batch (starting
        batches as needed), waiting for window space; stops before an item once ``interrupted()`` is
        true. Returns how many were taken (at least one: ``items[start]`` is taken whatever)."""
        window, nc = self._window, self._nc
        for n, item in enumerate(items[start:]):
            if n and (interrupted() or not self.takes(item, tracked)):
                return n
            batch = self._open
            op = _OP_APPEND
            if batch is None or not window.holds(batch.token):  # none, or expired by the Publisher's rewind
                batch, op = self._new_batch(item), _OP_START
            batch.sent += 1
            if not batch.unacked:
                window.advance(batch.token)
            batch.unacked.append(item)
            ev = item.event
            reply = f"{batch.prefix}{batch.sent}.{op}.$FI"
            try:
                if not self._queue(ev, reply):
                    await nc.publish(ev.subject, ev.data, reply=reply, headers=ev.headers())
                elif 0 < nc._max_pending_size < nc._pending_data_size:
                    await nc._flush_pending(force_flush=True)
            except Exception as exc:
                self._fail(batch, f"publish failed: {type(exc).__name__}: {exc}")
                return n + 1
            if not batch.started or len(batch.unacked) >= self._limit:
                await self._kick()
                while (not batch.started or len(batch.unacked) >= self._limit) and window.holds(batch.token):
                    await window.changed()
        await self._kick()
        return len(items) - start

    async def commit(self) -> None:
        """End the open batch (its final PubAck then acknowledges the rest); no-op when none is open."""
        batch, self._open = self._open, None
        if batch is None or not self._window.holds(batch.token):
            return
        try:
            await self._nc.publish(batch.subject, b"", reply=f"{batch.prefix}{batch.sent + 1}.{_OP_END}.$FI")
        except Exception as exc:
            self._fail(batch, f"publish failed: {type(exc).__name__}: {exc}")

    def _queue(self, ev: Event, reply: str) -> bool:
        """Put the HPUB frame of ``ev`` in nats-py's pending buffer (what its ``_send_command`` does);
        False, nothing done, when the connection is not up or nats-py's internals are not as expected
        (then ``nc.publish`` sends it). Our subjects, reply subjects and header values are already
        valid (no white space, no CR/LF), so nats-py's per-message checks and header encoding, which
        cost as much as the rest of the path, are skipped."""
        nc = self._nc
        pending = getattr(nc, "_pending", None)
        if not isinstance(pending, list) or not nc.is_connected:
            return False
        frame = self._frame(ev, reply)
        pending.append(frame)
        nc._pending_data_size += len(frame)
        return True

    async def _kick(self) -> None:
        """Have nats-py's flusher write the pending buffer when the loop next runs it."""
        nc = self._nc
        queue = getattr(nc, "_flush_queue", None)
        if queue is not None and queue.empty() and nc.is_connected:
            await nc._flush_pending()

    def _frame(self, ev: Event, reply: str) -> bytes:
        """``HPUB <subject> <reply> <hdr size> <total size>``, the headers, the payload."""
        # Only the msg id differs between the lines of one deployment: the rest is cached.
        shape = self._shapes.get((ev.kind, ev.subject, ev.deployment_id))
        if shape is None:
            rest = {k: v for k, v in ev.headers().items() if k != HEADER_MSG_ID}
            tail = "".join([f"\r\n{k}: {v}" for k, v in rest.items()]) + "\r\n\r\n"
            shape = (ev.subject.encode(), len(f"NATS/1.0\r\n{HEADER_MSG_ID}: {tail}".encode()), tail.encode())
            self._shapes[(ev.kind, ev.subject, ev.deployment_id)] = shape
        subject, fixed, tail_bytes = shape
        msg_id = ev.msg_id.encode()
        size = fixed + len(msg_id)
        data = ev.data
        return _HPUB % (subject, reply.encode(), size, size + len(data), msg_id, tail_bytes, data)

    def _new_batch(self, item: StoredEvent) -> _Batch:
        batch_id = os.urandom(9).hex()
        token = "F" + batch_id
        batch = _Batch(token, f"{self._root}.{batch_id}.{self.flow}.fail.", item.event.subject)
        self._batches[batch_id] = batch
        self._window.open(token, item)
        self._open = batch
        self.batches += 1
        return batch

    async def _on_reply(self, msg: Any) -> None:
        batch_id = msg.subject[len(self._root) + 1 :].split(".", 1)[0]
        batch = self._batches.get(batch_id)
        if batch is None:
            return
        entry = self._window.entry(batch.token)
        if entry is None:  # expired: the rows are being sent again
            self._forget(batch)
            return
        headers = msg.headers
        if headers and headers.get("Status") == "503":
            # No responders: no stream for the subject, or a clustered stream electing a leader.
            self._fail(batch, "no responders for the subject", no_responders=entry.item)
            return
        try:
            reply = _DECODER.decode(msg.data)
        except msgspec.DecodeError:
            self._fail(batch, "unreadable fast-ingest reply")
            return
        if reply.type == "ack":
            batch.started = True
            if reply.msgs > 0:  # the server may lower the flow when it lags (never raise it): follow it
                self._limit = min(reply.msgs, self.flow) * OUTSTANDING_ACKS
            self._ack_through(batch, reply.seq)
            return
        if reply.type == "gap":
            self._fail(batch, f"fast-ingest batch gap after message {reply.last_seq}")
            return
        if reply.error is not None:
            code = reply.error.get("err_code")
            desc = str(reply.error.get("description", reply.error))
            if code == _ERR_NOT_ENABLED and self.enabled:
                self.enabled = False
                log.info(
                    "stream %s does not accept fast-ingest batches (allow_batched is off; `cs nats setup` "
                    "turns it on): log lines are published one by one",
                    reply.stream or "?",
                )
            self._fail(batch, f"fast-ingest batch refused: {desc}")
            return
        if reply.batch and 0 < reply.count < batch.sent:  # never seen: the server took fewer than sent
            self._ack_through(batch, reply.count)
            self._fail(batch, f"the final PubAck covers {reply.count} of {batch.sent} messages")
            return
        if reply.batch:  # the final PubAck: everything sent is stored (seq 0: all were duplicates)
            self._ack_through(batch, batch.sent)
            self._forget(batch)
            self._window.close(batch.token)
            return
        self._fail(batch, "unexpected fast-ingest reply")

    def _ack_through(self, batch: _Batch, seq: int) -> None:
        stored = self._window.stored
        while batch.acked < seq and batch.unacked:
            batch.acked += 1
            stored(batch.unacked.popleft())
        self._window.advance(batch.token, batch.unacked[0] if batch.unacked else None)

    def _fail(self, batch: _Batch, reason: str, *, no_responders: StoredEvent | None = None) -> None:
        """Ambiguous: expire everything in flight; the Publisher rewinds and sends again (same ids)."""
        self._forget(batch)
        self._window.fail(batch.token, reason, no_responders=no_responders)

    def _forget(self, batch: _Batch) -> None:
        self._batches.pop(batch.token[1:], None)
        if self._open is batch:
            self._open = None

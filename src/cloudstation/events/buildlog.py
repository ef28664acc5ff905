"""A deployment's log: lines → redaction → one sequence → outbox → ``build.log.<deploymentId>``.

One :class:`BuildLog` turns a deployment's output into events: the output of every child a phase runs
(chunks in reading order, fed through :meth:`BuildLog.feed`; the child itself is run by
:mod:`cloudstation.processes`, the glue is ``plugins.childlog.run_into_log`` and ``cs stream``) and
``cs``'s own progress lines (:meth:`BuildLog.emit`). It knows nothing of processes.

- Lines split on ``\\n``; a trailing partial line is emitted when its pipe closes; invalid UTF-8 is
  replaced (an incremental decoder, so a character split across reads survives).
- One sequence per deployment, from 1, contiguous across stdout and stderr, in reading order;
  ``timestamp`` is the Unix-ms time the line was read.
- Every known secret is replaced by ``***`` before the line is journaled, published or shown.
- A line too long for one message (the server's ``max_payload``) becomes several events; their
  ``content`` concatenated in sequence order is the line. The room left for ``content`` is measured
  on the real envelope: the encoded payload with every other field (ids, phase) and the headers.
- Taking a line never waits on NATS: lines collect in a small in-memory buffer that spills to the
  durable outbox (a local SQLite write); the publisher drains the outbox on its own.
- :meth:`BuildLog.end` publishes ``build.log.end`` as a barrier: after every line is acknowledged.
  A line after that is a programming error: :class:`BuildLogClosedError`, never published.
- A full disk never stops the build: lines that cannot be journaled are held in memory (bounded) and
  journaled when there is room; what could not be kept is counted (:attr:`BuildLog.lost`) and
  :meth:`BuildLog.end` raises :class:`~cloudstation.errors.OutboxFullError` saying so.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import msgspec

from cloudstation.errors import ContractError, CsError, OutboxFullError
from cloudstation.events.contract import (
    MAX_PHASE_CHARS,
    Event,
    EventKind,
    encode_payload,
    new_msg_id,
    new_msg_ids,
    subject_for,
    validate_field,
)
from cloudstation.events.identity import DeploymentRef
from cloudstation.redaction import Redactor

Output = Literal["stdout", "stderr"]

# Until the server has told us its max_payload (INFO), lines are cut for a small one: a long line made
# while NATS is unreachable must still fit a server configured below the 1 MiB default.
UNKNOWN_MAX_PAYLOAD = 64 * 1024
_MIN_CONTENT_BYTES = 64  # an envelope leaving less room than this for the content is refused
_HELD_MAX = 100_000  # lines held in memory while the outbox's disk is full
_FULL_RETRY = 1.0  # seconds between two attempts to journal on a full disk

_MARK = "\x00cs-content\x00"  # stand-ins for the varying fields while a payload template is made
_TS_MARK = 9_182_736_455_463_728
_SEQ_MARK = 8_273_645_546_372_819
_CONTENT = msgspec.json.Encoder()  # a content string as JSON, exactly as inside the payload

log = logging.getLogger("cloudstation.events.buildlog")
_SPILL_LINES = 1024
_SPILL_INTERVAL = 0.05


class BuildLogClosedError(CsError):
    """A line arrived after the end of the log was requested: a programming error."""


class EventSink(Protocol):
    """Where events go: the publisher (journal first, then deliver)."""

    def submit(self, events: Sequence[Event], *, track: bool = False) -> list[int]: ...

    @property
    def max_payload(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line (or piece of a long line) as shown to a person: already redacted."""

    sequence: int
    phase: str
    output: Output
    content: str
    timestamp_ms: int


Echo = Callable[[LogLine], None]


class OutputChunk(Protocol):
    """Bytes a child wrote to one pipe, as read (``data`` empty: that pipe reached EOF)."""

    @property
    def output(self) -> Output: ...

    @property
    def read_ns(self) -> int: ...

    @property
    def data(self) -> bytes: ...


class BuildLog:
    """The log of one deployment. Create it, feed it lines and output, then :meth:`end` it once."""

    def __init__(
        self,
        sink: EventSink | None,
        identity: DeploymentRef,
        *,
        prefix: str = "",
        redactor: Redactor | None = None,
        echo: Echo | None = None,
        phase: str = "init",
    ) -> None:
        self.identity = identity
        self.redactor = redactor if redactor is not None else Redactor()
        self.phase = phase
        self.sequence = 0
        self._sink = sink
        self._echo = echo
        self._subject = subject_for(EventKind.BUILD_LOG, prefix=prefix, deployment_id=identity.deployment_id)
        self._prefix = prefix
        self._buffer: list[Event] = []
        self._ended = False
        self._spiller: asyncio.TimerHandle | None = None
        self._envelopes: dict[str, int] = {}
        self._templates: dict[tuple[Output, str], bytes] = {}
        self.envelope(phase)  # a phase tag that cannot be sent is refused now
        self.lost = 0  # lines that could not be kept (the outbox's disk was full)
        self._full: OutboxFullError | None = None
        self._retry_at = 0.0

    # -- producing lines ---------------------------------------------------------------------------

    def emit(self, text: str, *, output: Output = "stdout", phase: str | None = None) -> None:
        """Log ``cs``'s own message (one or more lines; a final newline is added when missing)."""
        if not text.endswith("\n"):
            text += "\n"
        now_ms = time.time_ns() // 1_000_000
        for line in text.splitlines(keepends=True):
            self._add_line(line, output, phase or self.phase, now_ms, None)

    def feed(self, phase: str | None = None, capture: list[str] | None = None) -> ChunkFeed:
        """A consumer of one child's output (its stdout and stderr chunks, in reading order) for this log.

        With ``capture``, the (redacted) lines are also appended to it. Refused once the log ended."""
        self._check_open()
        return ChunkFeed(self, phase or self.phase, capture)

    def _emit_long_prefix(
        self, partial: str, output: Output, phase: str, read_ms: int, capture: list[str] | None
    ) -> str:
        """Emit most of an unfinished, very long line now; keep the tail (a secret may continue)."""
        keep = max(self.redactor.longest, 1)
        cut = self.redactor.safe_cut(partial, len(partial) - keep)
        if cut <= 0:
            return partial
        self._add_line(partial[:cut], output, phase, read_ms, capture)
        return partial[cut:]

    def envelope(self, phase: str) -> int:
        """Bytes of a ``build.log`` message of this log without its content: every other field at its
        widest, the headers. Raises :class:`ContractError` for a phase tag the contract refuses."""
        size = self._envelopes.get(phase)
        if size is None:
            validate_field(phase, "phase", limit=MAX_PHASE_CHARS)
            ident = self.identity
            widest = ident.log_line("stdout", "", timestamp=10**15, sequence=10**15, phase=phase)
            probe = Event(EventKind.BUILD_LOG, self._subject, encode_payload(widest), new_msg_id(), ident.deployment_id)
            size = self._envelopes[phase] = probe.wire_size()
        return size

    def check_fits(self, max_payload: int) -> None:
        """Refuse (exit 2) an identity whose envelope leaves no room for content under ``max_payload``."""
        for phase in list(self._envelopes):
            if max_payload - self.envelope(phase) < _MIN_CONTENT_BYTES:
                raise ContractError(
                    f"the log's ids and phase take {self.envelope(phase)} bytes of each message: "
                    f"no room for content under the server's max_payload ({max_payload} bytes)"
                )

    def _max_chars(self, phase: str | None = None) -> int:
        limit = (self._sink.max_payload if self._sink is not None else None) or UNKNOWN_MAX_PAYLOAD
        room = limit - self.envelope(phase or self.phase)
        # msgspec writes at most 6 bytes per character (\u00XX escapes); stay under the limit always.
        return max(1, room // 6)

    def _add_line(self, raw: str, output: Output, phase: str, now_ms: int, capture: list[str] | None) -> None:
        self._add_lines([self.redactor.redact(raw)], output, phase, now_ms, capture)

    def _add_lines(
        self, contents: list[str], output: Output, phase: str, now_ms: int, capture: list[str] | None
    ) -> None:
        """Number, cut, show and buffer ``contents``: lines read at one moment, already redacted."""
        self._check_open()
        limit = self._max_chars(phase)
        if capture is not None:
            capture.extend(contents)
        echo, seq = self._echo, self.sequence
        pieces: list[str] = contents
        if any(len(c) > limit for c in contents):
            pieces = [p for c in contents for p in ((c,) if len(c) <= limit else _split(c, limit))]
        if echo is not None:
            for i, piece in enumerate(pieces, seq + 1):
                echo(LogLine(i, phase, output, piece, now_ms))
        self.sequence = seq + len(pieces)
        if self._sink is not None:
            self._buffer.extend(self._events(pieces, output, phase, now_ms, seq + 1))
        if len(self._buffer) >= _SPILL_LINES:
            self.spill()
        elif self._buffer and self._spiller is None:
            with contextlib.suppress(RuntimeError):  # no running loop: the next spill or end() takes it
                self._spiller = asyncio.get_running_loop().call_later(_SPILL_INTERVAL, self.spill)

    def _events(self, pieces: list[str], output: Output, phase: str, now_ms: int, first: int) -> list[Event]:
        """The ``build.log`` events of ``pieces``, numbered from ``first``: the payload from a template
        made once per output and phase (only content, timestamp and sequence vary), the msg ids from
        one random read."""
        template = self._templates.get((output, phase))
        if template is None:
            template = self._templates[output, phase] = _payload_template(self.identity, output, phase)
        ids = new_msg_ids(len(pieces))
        subject, dep, kind, enc = self._subject, self.identity.deployment_id, EventKind.BUILD_LOG, _CONTENT.encode
        if template:
            return [
                Event(kind, subject, template % (enc(piece), now_ms, seq), ids[i], dep)
                for i, (seq, piece) in enumerate(enumerate(pieces, first))
            ]
        ident = self.identity
        return [
            Event(kind, subject, encode_payload(ident.log_line(output, piece, now_ms, seq, phase)), ids[i], dep)
            for i, (seq, piece) in enumerate(enumerate(pieces, first))
        ]

    def spill(self, *, force: bool = False) -> None:
        """Move buffered lines to the durable outbox now (a local write; never waits on NATS).

        While the disk is full, attempts are spaced out unless ``force``."""
        if self._spiller is not None:
            self._spiller.cancel()
            self._spiller = None
        if not self._buffer or self._sink is None:
            return
        if self._full is not None and not force and time.monotonic() < self._retry_at:
            self._hold()
            return
        batch, self._buffer = self._buffer, []
        # At most _SPILL_LINES rows per transaction: when the disk fills, what fitted is kept.
        for start in range(0, len(batch), _SPILL_LINES):
            try:
                self._sink.submit(batch[start : start + _SPILL_LINES])
            except OutboxFullError as exc:
                if self._full is None:
                    log.warning("%s; log lines are held in memory and journaled when there is room", exc)
                self._full = exc
                self._retry_at = time.monotonic() + _FULL_RETRY
                self._buffer = batch[start:]
                self._hold()
                return
        if self._full is not None:
            log.warning("the outbox has room again: the held log lines are journaled")
            self._full = None

    @property
    def held(self) -> int:
        """Lines not journaled yet (held in memory while the outbox's disk is full)."""
        return len(self._buffer) if self._full is not None else 0

    def _hold(self) -> None:
        """Keep at most :data:`_HELD_MAX` lines in memory; count the others as lost; retry later."""
        if len(self._buffer) > _HELD_MAX:
            self.lost += len(self._buffer) - _HELD_MAX
            del self._buffer[_HELD_MAX:]
        if self._spiller is None:
            with contextlib.suppress(RuntimeError):
                self._spiller = asyncio.get_running_loop().call_later(_FULL_RETRY, self.spill)

    # -- the end -----------------------------------------------------------------------------------

    def end(self, status: Literal["success", "failed"]) -> int | None:
        """Close the log and queue ``build.log.end``; returns its outbox seq (None without a sink).

        The publisher sends it only after every earlier event is acknowledged. Any line after this
        raises :class:`BuildLogClosedError`.
        """
        self._check_open()
        self.spill(force=True)
        self._ended = True
        if self._sink is None:
            return None
        ident = self.identity
        try:
            if self._buffer:
                raise self._full or OutboxFullError("the outbox is full")
            (seq,) = self._sink.submit([ident.log_end(status, prefix=self._prefix)], track=True)
        except OutboxFullError as exc:
            self._cancel_spiller()
            lost = self.lost + len(self._buffer)
            self._buffer = []
            raise OutboxFullError(
                f"{exc}: {lost} log line(s) and the end of the log of deployment {ident.deployment_id} "
                "could not be kept"
            ) from None
        return seq

    def _cancel_spiller(self) -> None:
        if self._spiller is not None:
            self._spiller.cancel()
            self._spiller = None

    @property
    def ended(self) -> bool:
        return self._ended

    def _check_open(self) -> None:
        if self._ended:
            raise BuildLogClosedError(
                f"log of deployment {self.identity.deployment_id} already ended: line rejected, not published"
            )


def _payload_template(identity: DeploymentRef, output: Output, phase: str) -> bytes:
    """The payload of a line of ``output`` and ``phase`` as a bytes %-template of (encoded content,
    timestamp, sequence), or ``b""`` where that cannot be made (then each line's Struct is encoded)."""
    probe = encode_payload(identity.log_line(output, _MARK, timestamp=_TS_MARK, sequence=_SEQ_MARK, phase=phase))
    marks = (_CONTENT.encode(_MARK), b"%d" % _TS_MARK, b"%d" % _SEQ_MARK)
    if any(probe.count(m) != 1 for m in marks) or not probe.index(marks[0]) < probe.index(marks[1]) < probe.index(
        marks[2]
    ):
        return b""
    template = probe.replace(b"%", b"%%").replace(marks[0], b"%b").replace(marks[1], b"%d").replace(marks[2], b"%d")
    sample = identity.log_line(output, 'a "quoted" line\n', timestamp=1, sequence=2, phase=phase)
    if template % (_CONTENT.encode(sample.content), 1, 2) != encode_payload(sample):
        return b""
    return template


def _split(content: str, limit: int) -> list[str]:
    return [content[i : i + limit] for i in range(0, len(content), limit)]


class ChunkFeed:
    """One child's output into its :class:`BuildLog`: chunks → lines, per pipe, in reading order."""

    def __init__(self, log: BuildLog, phase: str, capture: list[str] | None) -> None:
        self._log = log
        self._phase = phase
        self._capture = capture
        self._decoders = {o: codecs.getincrementaldecoder("utf-8")(errors="replace") for o in ("stdout", "stderr")}
        self._partial: dict[Output, str] = {"stdout": "", "stderr": ""}

    def __call__(self, chunks: Iterable[OutputChunk]) -> None:
        """Turn the next chunks into lines; a chunk with no data ends its pipe (its partial line goes out)."""
        log, phase, capture, partial = self._log, self._phase, self._capture, self._partial
        redactor = log.redactor
        for chunk in chunks:
            output = chunk.output
            read_ms = chunk.read_ns // 1_000_000
            text = self._decoders[output].decode(chunk.data, final=not chunk.data)
            if text:
                head, sep, rest = (partial[output] + text).rpartition("\n")
                partial[output] = rest
                if sep:
                    log._add_lines(_redacted_lines(redactor, head), output, phase, read_ms, capture)
                if len(partial[output]) > log._max_chars(phase):
                    partial[output] = log._emit_long_prefix(partial[output], output, phase, read_ms, capture)
            if not chunk.data and partial[output]:
                log._add_line(partial[output], output, phase, read_ms, capture)
                partial[output] = ""


def _redacted_lines(redactor: Redactor, text: str) -> list[str]:
    """The ``\n``-separated lines of ``text``, each with its newline back, redacted. The whole text is
    redacted at once where no secret spans lines (no match can then cross a newline, so each line
    comes out as it would alone), else line by line."""
    if redactor and redactor.spans_lines:
        return [redactor.redact(line + "\n") for line in text.split("\n")]
    return [line + "\n" for line in redactor.redact(text).split("\n")]

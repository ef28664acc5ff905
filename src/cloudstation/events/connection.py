"""The connection to NATS: bounded connect, nats-py's callbacks, the shielded flush, and what a failure means.

Two users share it. The :class:`~cloudstation.events.publisher.Publisher` keeps one :class:`Connection`
for its life (reconnects endless once connected); the admin commands (``cs nats setup``/``check``,
``cs events tail``) connect once with :func:`connect_plain`. Both classify a failure the same way:

- refused credentials (``authorization violation``) are an :class:`~cloudstation.errors.AuthError` (77);
- an untrusted server certificate is a :class:`TlsError` naming ``NATS_CA_FILE``;
- anything else (refused, unroutable, slow) is a :class:`~cloudstation.errors.DeliveryError` (75).

nats-py caveats this module works around:

- a flush whose PING future is cancelled makes a later PONG kill nats-py's read loop, so
  :meth:`Connection.flush` never lets nats-py time out or be cancelled (it shields its own PONG future);
- nats-py's endless initial-connect loop ignores cancellation, and after an untrusted TLS certificate
  its ``connect()`` waits forever: so each attempt is bounded and watched (a refused certificate or
  credentials ends it at once), and the reconnect limit is lifted only once connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cloudstation.errors import AuthError, DeliveryError
from cloudstation.natsconn import NatsSettings

log = logging.getLogger("cloudstation.events.publisher")  # the whole delivery path logs under one name

_NO_TIMEOUT = 10 * 365 * 24 * 3600  # see Connection.flush
# One connection attempt's bound (TCP, INFO, CONNECT/PONG); a busy machine can take seconds.
_CONNECT_TIMEOUT = 5
# A server that accepts but has not completed a connection for this long is reported as slow.
_SLOW_CONNECT_WARNING = 15.0
_AUTH_REFUSED = "the NATS server refused our credentials (authorization violation)"


class TlsError(DeliveryError):
    """The server's TLS certificate could not be verified: retrying cannot help."""


class _Refusals:
    """What nats-py reported (through ``error_cb`` or a raised error) that retrying cannot cure."""

    def __init__(self) -> None:
        self.auth = False
        self.tls: ssl.SSLCertVerificationError | None = None

    def note(self, exc: BaseException) -> bool:
        """Remember ``exc`` if it is refused credentials or an untrusted certificate; says whether it was."""
        import nats.errors

        if isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in str(exc).lower():
            self.auth = True
            return True
        if isinstance(exc, ssl.SSLCertVerificationError):
            self.tls = exc
            return True
        return False

    def error(self) -> DeliveryError | None:
        """The refusal as our error (credentials first), or None."""
        if self.auth:
            return AuthError(_AUTH_REFUSED)
        if self.tls is not None:
            detail = self.tls.verify_message
            reason = f"certificate verify failed: {detail}" if detail else "certificate verify failed"
            return TlsError(
                f"TLS: the NATS server's certificate is not trusted ({reason}); "
                "set NATS_CA_FILE to the CA that signed it"
            )
        return None


async def connect_plain(settings: NatsSettings, *, timeout: float = 5.0) -> Any:
    """Connect once (no endless reconnect) for administrative commands; clear errors.

    Errors show the settings' servers without credentials.
    """
    import nats

    refusals = _Refusals()

    async def on_error(exc: Exception) -> None:
        refusals.note(exc)

    opts = settings.connect_options()
    # nats-py retries a refused server inside connect() until max_reconnect_attempts is exceeded:
    # keep that to one quick retry so an unreachable server is reported at once.
    opts.update(
        allow_reconnect=False,
        connect_timeout=min(timeout, 5.0),
        max_reconnect_attempts=1,
        reconnect_time_wait=0.2,
        error_cb=on_error,
    )
    try:
        return await asyncio.wait_for(nats.connect(**opts), timeout)
    except Exception as exc:
        refusals.note(exc)
        refused = refusals.error()
        if refused is not None:
            raise refused from None
        reason = settings.redact(str(exc)) or type(exc).__name__
        raise DeliveryError(f"cannot connect to NATS at {settings.shown_servers}: {reason}") from None


@dataclass(frozen=True)
class Callbacks:
    """What the owner of a :class:`Connection` hears from it."""

    # A new connection, before it is used (subscribe the reply subjects here).
    connected: Callable[[Any], Awaitable[None]]
    # The connection is lost: PubAcks for what was sent on it can never arrive.
    lost: Callable[[], None]
    # Reconnected after a loss.
    restored: Callable[[], None]
    # nats-py's "permissions violation for publish to ..." (its text): the subject is refused to us.
    publish_denied: Callable[[str], None]
    # A refusal that retrying cannot cure (a permission other than publishing).
    fatal: Callable[[DeliveryError], None]


class Connection:
    """One long-lived nats-py connection: :meth:`ensure` before use, :meth:`close` at the end."""

    def __init__(self, settings: NatsSettings, callbacks: Callbacks, *, kept_in: object) -> None:
        self.settings = settings
        self.nc: Any = None  # the connected nats-py client, None until connected and after close
        self.closing = False  # set by the owner when it starts closing: a disconnect is then expected
        self._on = callbacks
        self._kept_in = kept_in  # where undelivered events wait (named in warnings)
        self._refusals = _Refusals()
        self._connected = asyncio.Event()
        self._was_disconnected = False
        self._unreachable_logged = False
        self._first_attempt_at: float | None = None
        self._flushes: set[asyncio.Future[None]] = set()

    @property
    def is_connected(self) -> bool:
        return self.nc is not None and bool(self.nc.is_connected)

    @property
    def max_payload(self) -> int | None:
        """The server's max_payload from its INFO, while there is a connection."""
        return int(self.nc.max_payload) if self.nc is not None else None

    def describe(self, exc: BaseException) -> str:
        """A library error as one line, without any credential of the connection."""
        return self.settings.redact(describe(exc))

    async def ensure(self) -> None:
        """Connected on return; else :class:`AuthError`, :class:`TlsError` or :class:`DeliveryError`."""
        if self.nc is not None:
            if self.nc.is_connected:
                return
            if not self.nc.is_closed:
                await self._wait_connected()
                return
            self.nc = None
        await self._connect()

    def publish_now(self, subject: str, reply: str, headers: dict[str, str], data: bytes) -> bool:
        """Write one message to the socket now, not at nats-py's flusher task's next turn; False (nothing
        written) unless connected with nats-py's pending buffer empty, so the byte order is the flusher's
        (nats-py writes its PINGs the same way). Our subjects and header values hold no white space or
        CR/LF (the door), so nats-py's per-message checks are not repeated."""
        nc = self.nc
        transport = getattr(nc, "_transport", None)
        if transport is None or not nc.is_connected or getattr(nc, "_pending", True):
            return False
        try:
            hdr = ("NATS/1.0\r\n" + "".join([f"{k}: {v}\r\n" for k, v in headers.items()]) + "\r\n").encode()
            head = f"HPUB {subject} {reply} {len(hdr)} {len(hdr) + len(data)}\r\n".encode()
            transport.write(b"".join((head, hdr, data, b"\r\n")))
        except Exception:  # not as expected: the loop sends it through nc.publish instead
            return False
        return True

    async def flush(self) -> None:
        """``flush()`` bounded by the flush timeout, never cancelling nats-py's PING future (a PONG for a
        cancelled one kills nats-py's read loop): the PING goes with our own PONG future (as ``nc.flush``
        sends it, minus a Task), shielded from our timeout. Fallback (nats-py's loops gone): ``nc.flush``."""
        nc, pong = self.nc, asyncio.get_running_loop().create_future()
        loops = (getattr(nc, "_reading_task", None), getattr(nc, "_flusher_task", None))
        if hasattr(nc, "_send_ping") and all(t is not None and not t.done() for t in loops):
            await nc._send_ping(pong)
        else:
            pong = asyncio.ensure_future(nc.flush(timeout=_NO_TIMEOUT))
        self._flushes.add(pong)
        pong.add_done_callback(self._flushes.discard)
        async with asyncio.timeout(self.settings.flush_timeout):
            await asyncio.shield(pong)

    async def stream_covers(self, subject: str) -> bool:
        """Whether a JetStream stream covers ``subject``; True when JetStream cannot tell now.

        "No responders" means either no stream (definite) or a clustered stream electing its leader
        (transient): this tells them apart.
        """
        import nats.js.errors

        try:
            await self.nc.jetstream().find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            return False
        except Exception:
            return True
        return True

    async def close(self) -> None:
        """Flush (bounded), drain (bounded by the drain_timeout connect option) and close."""
        self.closing = True
        nc, self.nc = self.nc, None
        if nc is not None:
            if nc.is_connected:
                try:
                    self.nc = nc
                    await self.flush()
                except Exception as exc:
                    log.warning("final flush failed: %s", self.describe(exc))
                finally:
                    self.nc = None
            with contextlib.suppress(Exception):
                await nc.drain()
            with contextlib.suppress(Exception):
                await nc.close()
        for flush in list(self._flushes):
            flush.cancel()

    # -- connecting --------------------------------------------------------------------------------

    async def _wait_connected(self) -> None:
        self._connected.clear()
        while not self.nc.is_connected:
            if self._refusals.auth:
                raise AuthError(_AUTH_REFUSED)
            if self.nc.is_closed:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._connected.wait()

    async def _connect(self) -> None:
        """One bounded connection attempt (each server tried twice); the owner retries.

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
            refused = self._refusals.error()
            if refused is not None:
                raise refused from None
            raise DeliveryError(f"cannot connect to NATS: {self.describe(exc)}") from None
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 0.5
        await self._on.connected(nc)
        self.nc = nc
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
                if self._refusals.error() is not None or time.monotonic() > deadline:
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

    # -- nats-py's callbacks -----------------------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        if self._refusals.note(exc):
            return
        text = str(exc)
        lowered = text.lower()  # nats-py words it "permissions violation for publish to ..."
        if "permissions violation for publish" in lowered:
            self._on.publish_denied(text)
            return
        if "permissions violation" in lowered:
            self._on.fatal(AuthError(f"NATS permission refused: {self.settings.redact(text)}"))
            return
        if self.nc is None:
            self._report_connect_failure(exc)
        log.debug("nats: %s", self.describe(exc))

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
                self.describe(exc),
                self._kept_in,
            )
        elif now - self._first_attempt_at >= _SLOW_CONNECT_WARNING:
            self._unreachable_logged = True
            log.warning(
                "NATS at %s has not completed a connection in %.0fs (slow or overloaded?); events are kept "
                "in %s and retried",
                self.settings.shown_servers,
                now - self._first_attempt_at,
                self._kept_in,
            )

    async def _on_disconnected(self) -> None:
        if self.nc is None:
            return  # a connection attempt that failed: never connected, so never disconnected
        if not self._was_disconnected and not self.closing:
            log.warning("disconnected from NATS; events are kept in %s and retried", self._kept_in)
        self._was_disconnected = True
        # PubAcks for messages sent on the lost connection can never arrive: retry them now rather
        # than after the PubAck timeout (the ones that were stored are de-duplicated).
        self._on.lost()

    async def _on_reconnected(self) -> None:
        if self._was_disconnected:
            log.warning("reconnected to NATS at %s", _server_of(self.nc))
        self._was_disconnected = False
        self._connected.set()
        self._on.restored()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _server_of(nc: Any) -> str:
    try:
        url = nc.connected_url
        return f"{url.hostname}:{url.port}"
    except Exception:
        return "?"


def describe(exc: BaseException) -> str:
    """An exception as ``Type: message`` (the type alone when there is no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

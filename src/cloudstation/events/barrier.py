"""A barrier sent early: a lifecycle event ``Publisher.submit`` puts on the wire itself, the loop being idle.

The barrier rule already holds then: nothing else of the process is unacknowledged, in flight (the
open fast-ingest batch is closed), parked or due for a rewind. The delivery loop finds the event next
and only awaits its PubAck; a failure rewinds it like any sent barrier. It saves waking the loop and
nats-py's flusher task before the message leaves (lifecycle latency, issue 12).

Why the guarantee holds: the write follows the door and the journal commit, as the loop's own send
does. A crash before the commit sends nothing (the caller never got the event back as journaled);
after it, the row is resent with its ``Nats-Msg-Id`` (de-duplicated). A full or read-only disk raises
in ``submit`` before anything is written. The PubAck is read by the event loop, so only after
``submit`` has returned with the row committed and the entry in the ack window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cloudstation.events.ackwindow import Ack, AckWindow
from cloudstation.events.outbox import StoredEvent


class EarlyBarrier:
    """The one barrier on the wire before the loop reached it: its seq and PubAck future, or nothing."""

    def __init__(self) -> None:
        self._sent: tuple[int, asyncio.Future[Ack]] | None = None

    def __bool__(self) -> bool:
        return self._sent is not None

    def send(self, item: StoredEvent, window: AckWindow, write: Callable[..., bool]) -> None:
        """Write ``item`` now through ``write`` (the caller checked that the loop is idle); kept if it went."""
        fut: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        if window.send_now(item, fut, write):
            self._sent = (item.seq, fut)

    def sent(self, seq: int) -> bool:
        """``seq`` is the barrier already on the wire."""
        return self._sent is not None and self._sent[0] == seq

    def take(self, seq: int) -> asyncio.Future[Ack] | None:
        """The PubAck future of ``seq`` if it was sent early (then forgotten here), else None."""
        sent, self._sent = self._sent, None
        return sent[1] if sent is not None and sent[0] == seq else None

    def forget(self) -> None:
        """A rewind: the barrier failed with the rest and is sent again from the outbox."""
        self._sent = None

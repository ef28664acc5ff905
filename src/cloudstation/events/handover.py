"""The hand-over of rows this process just journaled to its delivery loop, without reading them back.

``Publisher.submit`` journals a run of events, then puts them here; the delivery loop takes the next
rows after its cursor from here when they are held, else reads them from the outbox, but only up to
the oldest row held (so no row is sent twice and the held rows stay). Memory is bounded: a run that
would take the hand-over past :data:`MAX_ROWS` rows or :data:`MAX_BYTES` payload bytes is not held
(it is read back later, in order). Rows are held in ascending seq order, all after the cursor: the
loop takes them in order, and a rewind or a retry pass moves the cursor back, never past them.

The door (:func:`~cloudstation.events.door.admit`) is checked again before a row is sent, against the
server's ``max_payload`` then: a held row was admitted by ``submit`` under a known limit, and a run
read back is checked as one (:func:`~cloudstation.events.door.admit_all`); :meth:`HandOver.take`
says under which limit its rows are known to pass, so the loop re-checks only where it must.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cloudstation.errors import ContractError
from cloudstation.events.contract import Event
from cloudstation.events.door import admit_all
from cloudstation.events.outbox import Outbox, StoredEvent

MAX_ROWS = 65_536
MAX_BYTES = 32 << 20
_NO_LIMIT = 1 << 62


class HandOver:
    """Just-journaled rows by seq, bounded; see the module docstring."""

    def __init__(self, outbox: Outbox, *, max_rows: int | None = None, max_bytes: int | None = None) -> None:
        self._outbox = outbox
        self._max_rows = MAX_ROWS if max_rows is None else max_rows
        self._max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self._rows: dict[int, StoredEvent] = {}
        self._bytes = 0
        self._admitted = _NO_LIMIT  # the smallest max_payload the held rows were admitted under

    def __len__(self) -> int:
        return len(self._rows)

    def put(self, seqs: Sequence[int], events: Sequence[Event], admitted_under: int) -> None:
        """Hold ``events`` (just journaled as ``seqs``, admitted under ``admitted_under``) if they fit."""
        size = sum(len(ev.data) for ev in events)
        if len(self._rows) + len(seqs) > self._max_rows or self._bytes + size > self._max_bytes:
            return
        now = time.time()
        rows = self._rows
        for seq, ev in zip(seqs, events, strict=True):
            rows[seq] = StoredEvent(seq, ev, now, 0)
        self._bytes += size
        self._admitted = min(self._admitted, admitted_under)

    def take(self, cursor: int, limit: int, max_payload: int) -> tuple[list[StoredEvent], int]:
        """The next rows after ``cursor`` (at most ``limit``), and the ``max_payload`` under which
        they are known to pass the door (0: unknown, check each)."""
        rows = self._rows
        seq = cursor + 1
        if seq not in rows:
            first = next(iter(rows), None)
            batch = self._outbox.next_batch(cursor, limit, before=first)
            if batch or first is None:
                return batch, _checked(batch, max_payload)
            seq = first  # nothing left to send before the held rows (acknowledged or set aside)
        run: list[StoredEvent] = []
        size = 0
        while seq in rows and len(run) < limit:
            item = rows.pop(seq)
            run.append(item)
            size += len(item.event.data)
            seq += 1
        self._bytes -= size
        admitted = self._admitted
        if not rows:
            self._admitted = _NO_LIMIT
        return run, admitted


def _checked(batch: list[StoredEvent], max_payload: int) -> int:
    """``max_payload`` if every row of ``batch`` passes the door under it, else 0 (check each)."""
    try:
        admit_all([item.event for item in batch], max_payload)
    except ContractError:
        return 0
    return max_payload

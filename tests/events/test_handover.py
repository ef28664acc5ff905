"""The hand-over of just-journaled rows to the delivery loop, on its own (a real outbox, no server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cloudstation.events.handover import HandOver
from cloudstation.events.outbox import Outbox
from tests.events.test_outbox_unit import lines

LIMIT = 1024 * 1024


def test_rows_that_did_not_fit_are_read_back_up_to_the_held_ones_which_stay(tmp_path: Path) -> None:
    # catches: a read-back running into held rows (sent twice), held rows dropped by a read-back (read
    # back needlessly), rows past the bound held anyway (memory unbounded), a gap skipped
    with Outbox(tmp_path) as box:
        fresh = HandOver(box, max_rows=10)
        evs = lines("d", 20)
        a, b, c = box.append(evs[:5]), box.append(evs[5:10]), box.append(evs[10:15])
        for seqs, run in ((a, evs[:5]), (b, evs[5:10]), (c, evs[10:15])):
            fresh.put(seqs, run, LIMIT)
        assert len(fresh) == 10  # c did not fit
        taken, admitted = fresh.take(a[0] - 1, 1024, LIMIT)
        assert [s.seq for s in taken] == a + b and admitted == LIMIT
        d = box.append(evs[15:])
        fresh.put(d, evs[15:], LIMIT)
        taken, admitted = fresh.take(b[-1], 3, LIMIT)  # read back, stopping at the limit
        assert [s.seq for s in taken] == c[:3] and admitted == LIMIT
        taken, _ = fresh.take(c[2], 1024, LIMIT)  # read back, stopping before the held rows
        assert [s.seq for s in taken] == c[3:]
        taken, _ = fresh.take(c[-1], 1024, LIMIT)
        assert [s.seq for s in taken] == d and len(fresh) == 0
        assert [s.event for s in taken] == evs[15:]
        # a rewind: the rows come from the outbox again (none is held), up to the end
        taken, _ = fresh.take(a[0] - 1, 1024, LIMIT)
        assert [s.seq for s in taken] == a + b + c + d


def test_gone_rows_before_the_held_ones_are_skipped_and_the_door_is_said_for_read_backs(tmp_path: Path) -> None:
    # catches: an empty read-back taken as "nothing to send" while rows are held (the loop would sleep),
    # a read-back reported as passing the door although a row in it does not
    with Outbox(tmp_path) as box:
        fresh = HandOver(box)
        evs = lines("d", 6)
        first = box.append(evs[:3])
        box.remove(first)  # acknowledged meanwhile
        later = box.append(evs[3:])
        fresh.put(later, evs[3:], LIMIT)
        taken, _ = fresh.take(first[0] - 1, 1024, LIMIT)
        assert [s.seq for s in taken] == later
        big = dataclasses.replace(evs[0], data=evs[0].data + b" " * 1000)
        seqs = box.append([evs[1], big])
        taken, admitted = fresh.take(later[-1], 1024, LIMIT)
        assert [s.seq for s in taken] == seqs and admitted == LIMIT
        taken, admitted = fresh.take(later[-1], 1024, big.wire_size() - 1)
        assert admitted == 0  # the big row does not pass: each row is checked before it is sent

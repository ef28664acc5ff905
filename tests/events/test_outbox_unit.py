"""The outbox on its own (no server): append and read back in order, remove, owners and adoption,
set aside and discard, the pending report, and opening older or foreign files.

Each test names the bug it would catch.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cloudstation.errors import OutboxError
from cloudstation.events import contract as c
from cloudstation.events.outbox import OUTBOX_FILENAME, Outbox
from tests.events.samples import log_lines


def status(dep: str, job: int = 1) -> c.Event:
    return c.make_event(
        c.EventKind.STATUS_CHANGED, c.StatusChanged(job_id=job, status="IN_PROGRESS"), deployment_id=dep
    )


def line(dep: str, i: int) -> c.Event:
    return log_lines(dep, 1, start=i)[0]


def lines(dep: str, n: int) -> list[c.Event]:
    return log_lines(dep, n)


def test_append_then_next_batch_returns_the_events_unchanged_in_order_after_the_cursor(tmp_path: Path) -> None:
    # catches: rows read back out of order, a field lost or swapped on the way, an off-by-one cursor
    evs = [status("d1"), *lines("d1", 5), status("d1", 2)]
    with Outbox(tmp_path) as box:
        single = box.append(evs[:1])  # one row: its own statement
        many = box.append(evs[1:])  # several rows: one transaction
        seqs = single + many
        assert seqs == list(range(seqs[0], seqs[0] + len(evs)))
        got = box.next_batch(0, 100)
        assert [s.seq for s in got] == seqs
        assert [s.event for s in got] == evs
        assert [s.attempts for s in got] == [0] * len(evs)
        assert [s.seq for s in box.next_batch(seqs[2], 3)] == seqs[3:6]
        assert box.next_batch(seqs[-1], 10) == []
        assert box.append([]) == []


def test_each_process_reads_and_counts_only_its_own_rows(tmp_path: Path) -> None:
    # catches: a process delivering another live process's events (they would be sent twice)
    with Outbox(tmp_path) as a, Outbox(tmp_path) as b:
        a1 = a.append(lines("a", 3))
        b1 = b.append(lines("b", 2))
        a2 = a.append([status("a")])
        assert [s.seq for s in a.next_batch(0, 100)] == a1 + a2
        assert [s.seq for s in b.next_batch(0, 100)] == b1
        assert (a.count(), b.count(), a.count(mine=False)) == (4, 2, 6)


def test_remove_deletes_exactly_the_acknowledged_rows_whatever_their_runs(tmp_path: Path) -> None:
    # catches: a range delete that takes one row too many or too few (a lost or a resent event)
    with Outbox(tmp_path) as box:
        seqs = box.append(lines("d", 10))
        acked = [seqs[i] for i in (0, 1, 2, 4, 7, 8)]
        box.remove(reversed(acked))  # acks may come in any order
        assert [s.seq for s in box.next_batch(0, 100)] == [seqs[i] for i in (3, 5, 6, 9)]
        box.remove([])
        assert box.count() == 4


def test_adopt_orphans_takes_a_dead_owners_rows_in_order_but_never_a_live_ones(tmp_path: Path) -> None:
    # catches: adopting a live process's rows, losing a dead one's, or reordering them
    dead = Outbox(tmp_path)
    dead_seqs = dead.append([status("x"), *lines("x", 3)])
    with Outbox(tmp_path) as live, Outbox(tmp_path) as heir:
        live_seqs = live.append(lines("y", 2))
        mine = heir.append([status("z")])
        assert heir.adopt_orphans() == 0  # both other owners are alive
        dead.close()  # its process ends with rows left: its lock is free, its lock file stays
        assert (tmp_path / "owners" / f"{dead.owner}.lock").exists()
        assert heir.adopt_orphans() == len(dead_seqs)
        assert [s.seq for s in heir.next_batch(0, 100)] == sorted(dead_seqs + mine)
        assert [s.seq for s in live.next_batch(0, 100)] == live_seqs
        assert not (tmp_path / "owners" / f"{dead.owner}.lock").exists()
        assert heir.adopt_orphans() == 0


def test_set_aside_rows_are_kept_and_reported_but_never_read_for_delivery(tmp_path: Path) -> None:
    # catches: a refused-for-good event sent again (blocking the rest), or silently dropped
    with Outbox(tmp_path) as box:
        seqs = box.append(lines("d", 3))
        box.set_aside(seqs[1], "too large for the server")
        assert [s.seq for s in box.next_batch(0, 100)] == [seqs[0], seqs[2]]
        assert (box.count(), box.count(set_aside=True)) == (2, 1)
        report = {p.seq: p for p in box.pending()}
        assert report[seqs[1]].set_aside and report[seqs[1]].state == "set aside"
        assert (report[seqs[1]].attempts, report[seqs[1]].last_error) == (1, "too large for the server")
        assert report[seqs[0]].state == "owned by a running cs" and not report[seqs[0]].set_aside  # ours: alive


def test_set_aside_rows_stay_set_aside_when_adopted(tmp_path: Path) -> None:
    # catches: an heir resending what its dead predecessor had set aside
    dead = Outbox(tmp_path)
    seqs = dead.append(lines("d", 2))
    dead.set_aside(seqs[0], "refused")
    dead.close()
    with Outbox(tmp_path) as heir:
        assert heir.adopt_orphans() == 2
        assert [s.seq for s in heir.next_batch(0, 100)] == [seqs[1]]
        assert heir.count(set_aside=True) == 1


def test_discard_deletes_only_set_aside_rows(tmp_path: Path) -> None:
    # catches: an operator's `cs events discard` deleting an event still waiting for delivery
    with Outbox(tmp_path) as box:
        seqs = box.append(lines("d", 3))
        box.set_aside(seqs[2], "refused")
        assert box.discard(seqs) == 1
        assert [s.seq for s in box.next_batch(0, 100)] == seqs[:2]
        assert box.count(set_aside=True) == 0


def test_record_failure_counts_attempts_and_keeps_the_last_reason_bounded(tmp_path: Path) -> None:
    # catches: a diagnosis that never reaches `cs events pending`, or an unbounded error text
    with Outbox(tmp_path) as box:
        seqs = box.append(lines("d", 2))
        box.record_failure([seqs[0]], "no PubAck within 5s")
        box.record_failure([seqs[0]], "x" * 2000)
        first, second = box.next_batch(0, 10)
        assert (first.attempts, second.attempts) == (2, 0)
        report = box.pending()
        assert report[0].last_error == "x" * 500 and report[1].last_error == ""


def test_pending_report_covers_every_owner_in_order_and_says_who_is_alive(tmp_path: Path) -> None:
    # catches: a report missing other processes' rows, or calling a dead owner's rows "owned by a running cs"
    dead = Outbox(tmp_path)
    d = dead.append([status("x")])
    with Outbox(tmp_path) as live, Outbox(tmp_path) as me:
        lv = live.append([status("y")])
        z = line("z", 1)
        m = me.append([z])
        assert [(p.seq, p.state) for p in me.pending()] == [
            (d[0], "owned by a running cs"),
            (lv[0], "owned by a running cs"),
            (m[0], "owned by a running cs"),  # the reporting process's own rows: it is alive
        ]
        dead.close()
        assert [p.state for p in me.pending()] == ["waiting", "owned by a running cs", "owned by a running cs"]
        full = me.pending()[2]
        assert (full.kind, full.subject, full.deployment_id) == ("build.log", "build.log.z", "z")
        assert full.data == z.data and full.msg_id == z.msg_id
        assert [p.data for p in me.iter_pending(with_data=False)] == [b"", b"", b""]


def test_max_payload_is_remembered_for_every_process_sharing_the_outbox(tmp_path: Path) -> None:
    # catches: the door using 1 MiB after a restart although the server said less
    with Outbox(tmp_path) as box:
        assert box.known_max_payload() is None
        box.remember_max_payload(4096)
    with Outbox(tmp_path) as again:
        assert again.known_max_payload() == 4096


def test_closing_keeps_the_lock_file_only_while_rows_remain(tmp_path: Path) -> None:
    # catches: an owner lock file left behind for ever, or removed while its rows still need an heir
    with Outbox(tmp_path) as empty:
        empty.remove(empty.append([status("a")]))
    assert not (tmp_path / "owners" / f"{empty.owner}.lock").exists()
    with Outbox(tmp_path) as busy:
        busy.append([status("b")])
    assert (tmp_path / "owners" / f"{busy.owner}.lock").exists()


def test_an_outbox_of_an_older_cs_is_migrated_and_its_rows_delivered(tmp_path: Path) -> None:
    # catches: refusing (or losing) the events an older cs left behind without the set_aside column
    ev = status("old")
    db = sqlite3.connect(tmp_path / OUTBOX_FILENAME)
    db.executescript(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, msg_id TEXT NOT NULL, "
        "kind TEXT NOT NULL, subject TEXT NOT NULL, deployment_id TEXT NOT NULL, data BLOB NOT NULL, "
        "created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');"
    )
    db.execute(
        "INSERT INTO events (owner, msg_id, kind, subject, deployment_id, data, created_at) VALUES (?,?,?,?,?,?,?)",
        ("gone-1", ev.msg_id, ev.kind.value, ev.subject, ev.deployment_id, ev.data, 0.0),
    )
    db.commit()
    db.close()
    with Outbox(tmp_path) as box:
        assert box.adopt_orphans() == 1
        assert [s.event for s in box.next_batch(0, 10)] == [ev]
        box.set_aside(1, "refused")  # the new column works
        assert box.count(set_aside=True) == 1
    assert (tmp_path / OUTBOX_FILENAME).stat().st_mode & 0o777 == 0o600


def test_a_database_that_is_not_an_outbox_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    # catches: cs writing its tables into someone else's database
    db = sqlite3.connect(tmp_path / OUTBOX_FILENAME)
    db.execute("CREATE TABLE invoices (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(OutboxError, match="not a cs outbox"):
        Outbox(tmp_path)
    db = sqlite3.connect(tmp_path / OUTBOX_FILENAME)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert tables == {"invoices"}


def test_next_batch_stops_before_the_given_seq(tmp_path: Path) -> None:
    # catches: the read-back of rows that did not fit the Publisher's hand-over running into the rows
    # it holds in memory (they would be sent twice)
    with Outbox(tmp_path) as box:
        seqs = box.append(lines("d1", 6))
        assert [s.seq for s in box.next_batch(0, 100, before=seqs[3])] == seqs[:3]
        assert [s.seq for s in box.next_batch(seqs[0], 100, before=seqs[3])] == seqs[1:3]
        assert box.next_batch(seqs[2], 100, before=seqs[3]) == []
        assert [s.seq for s in box.next_batch(0, 2, before=seqs[3])] == seqs[:2]

"""The durable outbox: a local SQLite journal (WAL) of every event not yet acknowledged by JetStream.

An event is appended here *before* it is published and removed only after its PubAck, so a crash,
a kill or a NATS outage never loses it: the next ``cs`` process delivers what is left, first, in the
order it was journaled.

Several ``cs`` processes may share one outbox. Each process owns the rows it appends; a process
holds an exclusive ``flock`` on ``owners/<owner>.lock`` for its whole life. Rows whose owner's lock can
be taken belong to a dead process: :meth:`Outbox.adopt_orphans` moves them to the caller, so a live
process's events are never delivered by another one.

An event the server refuses for good (larger than its ``max_payload``, refused by the stream's own
limits) is *set aside*: it stays in the outbox, is reported by ``cs events pending``, and is never
sent again, so it can block neither its own deployment's later events, nor other deployments, nor
the processes that adopt it.

The state directory is created 0700 and every file in it (the database, its ``-wal`` and ``-shm``,
the owner locks) is 0600, whatever the umask: the journal holds every event. A state directory or a
database that cannot be used is an :class:`~cloudstation.errors.OutboxError` (exit 2) naming it; a
full disk is an :class:`~cloudstation.errors.OutboxFullError`. The SQLite file itself (schema, opening,
error translation) is :mod:`cloudstation.events.outboxfile`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

from cloudstation.errors import OutboxError, OutboxFullError
from cloudstation.events.contract import Event, EventKind
from cloudstation.events.outboxfile import open_database, private_files, translate
from cloudstation.events.statefiles import hold_lock, private_dir, try_lock

OUTBOX_FILENAME = "outbox.sqlite3"
_SEQ_END = 1 << 62  # past every seq (SQLite's rowids are signed 64-bit)

P = ParamSpec("P")
R = TypeVar("R")


def default_state_dir(env: Mapping[str, str]) -> Path:
    """``CS_STATE_DIR``, else ``$NOMAD_ALLOC_DIR/cs``, else the user's state directory."""
    if env.get("CS_STATE_DIR"):
        return Path(env["CS_STATE_DIR"])
    if env.get("NOMAD_ALLOC_DIR"):
        return Path(env["NOMAD_ALLOC_DIR"]) / "cs"
    import platformdirs

    return Path(platformdirs.user_state_dir("cs", appauthor=False))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as journaled, with its outbox sequence (delivery order)."""

    seq: int
    event: Event
    created_at: float
    attempts: int


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """One undelivered event, as ``cs events pending`` reports it."""

    seq: int
    kind: str
    subject: str
    msg_id: str
    deployment_id: str
    age_s: float
    attempts: int
    last_error: str
    owner_alive: bool
    set_aside: bool
    data: bytes

    @property
    def state(self) -> Literal["set aside", "waiting", "owned by a running cs"]:
        """Why the event is kept: set aside for good, waiting for delivery, or another live process's."""
        if self.set_aside:
            return "set aside"
        return "owned by a running cs" if self.owner_alive else "waiting"


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turn SQLite's errors into ours: a full disk, or a file that is not (or no longer) an outbox."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            outbox = args[0]
            assert isinstance(outbox, Outbox)
            raise outbox.translate(exc) from None

    return wrapper


class Outbox:
    """One process's handle on the outbox in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / OUTBOX_FILENAME
        self._owners_dir = state_dir / "owners"
        self.owner = new_owner_id()
        private_dir(state_dir)
        private_dir(self._owners_dir)
        private_files(self.path)
        try:
            self._lock_fd = hold_lock(self._owners_dir / f"{self.owner}.lock")
        except OSError as exc:
            raise OutboxError(f"CS_STATE_DIR: cannot write in {self._owners_dir}: {exc.strerror}") from None
        try:
            self._db = open_database(self.path)
        except sqlite3.Error as exc:
            os.close(self._lock_fd)
            raise self.translate(exc) from None
        except OutboxError:
            os.close(self._lock_fd)
            raise

    def translate(self, exc: sqlite3.Error) -> Exception:
        """Our error for a SQLite error on this outbox."""
        return translate(self.path, exc)

    # -- writing -----------------------------------------------------------------------------------

    @_guarded
    def append(self, events: Sequence[Event]) -> list[int]:
        """Journal ``events`` in one transaction; returns their sequence numbers, in order."""
        if not events:
            return []
        now = time.time()
        rows = [(self.owner, ev.msg_id, ev.kind.value, ev.subject, ev.deployment_id, ev.data, now) for ev in events]
        if len(rows) == 1:  # one statement is its own transaction: the common case of a lifecycle event
            cur = self._db.execute(
                "INSERT INTO events (owner, msg_id, kind, subject, deployment_id, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows[0],
            )
            assert cur.lastrowid is not None
            return [cur.lastrowid]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO events (owner, msg_id, kind, subject, deployment_id, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # The write lock is held and AUTOINCREMENT hands out max+1, so the rows are consecutive.
            last = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))

    @_guarded
    def remove(self, seqs: Iterable[int]) -> None:
        """Forget delivered events (acknowledged by JetStream). Acks mostly come in order, so the
        seqs are deleted as ranges."""
        ranges = _as_ranges(sorted(seqs))
        if ranges:
            with self._transaction() as db:
                db.executemany("DELETE FROM events WHERE seq BETWEEN ? AND ?", ranges)

    @_guarded
    def record_failure(self, seqs: Iterable[int], error: str) -> None:
        """Count one more failed attempt for ``seqs`` and remember why (a secret-free message)."""
        rows = [(error[:500], s) for s in seqs]
        if rows:
            with self._transaction() as db:
                db.executemany("UPDATE events SET attempts = attempts + 1, last_error = ? WHERE seq = ?", rows)

    @_guarded
    def set_aside(self, seq: int, error: str) -> None:
        """Keep ``seq`` for good but never send it again (the server refused it for good)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE events SET set_aside = 1, attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:500], seq),
            )

    @_guarded
    def discard(self, seqs: Iterable[int]) -> int:
        """Delete set-aside events (an operator's decision); returns how many were deleted."""
        with self._transaction() as db:
            cur = db.executemany("DELETE FROM events WHERE seq = ? AND set_aside = 1", [(s,) for s in seqs])
            return int(cur.rowcount)

    @_guarded
    def known_max_payload(self) -> int | None:
        """The server's ``max_payload`` as last seen by any process sharing this outbox."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'max_payload'").fetchone()
        return int(row[0]) if row and str(row[0]).isdigit() else None

    @_guarded
    def remember_max_payload(self, value: int) -> None:
        if value != self.known_max_payload():
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('max_payload', ?)", (str(value),))

    @_guarded
    def adopt_orphans(self) -> int:
        """Take over the events of every dead owner; returns how many were adopted."""
        adopted = 0
        for owner in self._other_owners():
            lock_path = self._owners_dir / f"{owner}.lock"
            fd = try_lock(lock_path)
            if fd is None:
                continue  # that process is alive: its events are its own
            try:
                with self._transaction() as db:
                    cur = db.execute("UPDATE events SET owner = ? WHERE owner = ?", (self.owner, owner))
                    adopted += cur.rowcount
                with contextlib.suppress(FileNotFoundError):
                    lock_path.unlink()
            finally:
                os.close(fd)
        return adopted

    # -- reading -----------------------------------------------------------------------------------

    @_guarded
    def next_batch(self, after_seq: int, limit: int, *, before: int | None = None) -> list[StoredEvent]:
        """This owner's events with ``seq > after_seq`` (and ``< before``), oldest first."""
        rows = self._db.execute(
            "SELECT seq, kind, subject, data, msg_id, deployment_id, created_at, attempts FROM events "
            "WHERE owner = ? AND seq > ? AND seq < ? AND set_aside = 0 ORDER BY seq LIMIT ?",
            (self.owner, after_seq, _SEQ_END if before is None else before, limit),
        ).fetchall()
        return [
            StoredEvent(
                seq=seq,
                event=Event(
                    kind=EventKind(kind),
                    subject=subject,
                    data=bytes(data),
                    msg_id=msg_id,
                    deployment_id=dep,
                ),
                created_at=created,
                attempts=attempts,
            )
            for seq, kind, subject, data, msg_id, dep, created, attempts in rows
        ]

    @_guarded
    def count(self, *, mine: bool = True, set_aside: bool = False) -> int:
        """How many events this owner (or, with ``mine=False``, anyone) has still to deliver; with
        ``set_aside``, how many are set aside instead."""
        flag = 1 if set_aside else 0
        if mine:
            row = self._db.execute(
                "SELECT COUNT(*) FROM events WHERE owner = ? AND set_aside = ?", (self.owner, flag)
            ).fetchone()
        else:
            row = self._db.execute("SELECT COUNT(*) FROM events WHERE set_aside = ?", (flag,)).fetchone()
        return int(row[0])

    @_guarded
    def pending(self) -> list[PendingEvent]:
        """Every undelivered event in this outbox, whoever owns it, oldest first."""
        return list(self.iter_pending())

    def iter_pending(self, *, with_data: bool = True) -> Iterator[PendingEvent]:
        """:meth:`pending`, streamed (the outbox may hold millions of events); without ``with_data``,
        payloads are not read (``data`` is empty)."""
        now = time.time()
        alive: dict[str, bool] = {}
        data_column = "data" if with_data else "x''"
        try:
            rows = self._db.execute(
                "SELECT seq, owner, kind, subject, msg_id, deployment_id, created_at, attempts, last_error, "
                f"set_aside, {data_column} FROM events ORDER BY seq"
            )
        except sqlite3.Error as exc:
            raise self.translate(exc) from None
        for seq, owner, kind, subject, msg_id, dep, created, attempts, err, aside, data in rows:
            if owner not in alive:
                alive[owner] = owner == self.owner or self._owner_alive(owner)
            yield PendingEvent(
                seq=seq,
                kind=kind,
                subject=subject,
                msg_id=msg_id,
                deployment_id=dep,
                age_s=max(0.0, now - created),
                attempts=attempts,
                last_error=err,
                owner_alive=alive[owner],
                set_aside=bool(aside),
                data=bytes(data),
            )

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; release this owner's lock (its lock file goes if it owns no events)."""
        with contextlib.suppress(sqlite3.Error, OutboxError, OutboxFullError):
            if self.count() == 0 and self.count(set_aside=True) == 0:
                with contextlib.suppress(FileNotFoundError):
                    (self._owners_dir / f"{self.owner}.lock").unlink()
        self._db.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk): never mask the cause.
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def _other_owners(self) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT owner FROM events WHERE owner != ?", (self.owner,))
        return [r[0] for r in rows]

    def _owner_alive(self, owner: str) -> bool:
        fd = try_lock(self._owners_dir / f"{owner}.lock")
        if fd is None:
            return True
        os.close(fd)
        return False


def _as_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted seqs as inclusive (first, last) runs of consecutive numbers."""
    ranges: list[tuple[int, int]] = []
    for seq in seqs:
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def new_owner_id() -> str:
    """A unique owner id for this process's rows."""
    return f"{os.getpid()}-{os.urandom(6).hex()}"

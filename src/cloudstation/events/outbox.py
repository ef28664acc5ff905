"""The durable outbox: a local SQLite journal (WAL) of every event not yet acknowledged by JetStream.

An event is appended here *before* it is published and removed only after its PubAck, so a crash,
a kill or a NATS outage never loses it: the next ``cs`` process delivers what is left, first, in the
original order.

Several ``cs`` processes may share one outbox. Each process owns the rows it appends; a process
holds an exclusive ``flock`` on ``owners/<owner>.lock`` for its whole life. Rows whose owner's lock can
be taken belong to a dead process: :meth:`Outbox.adopt_orphans` moves them to the caller, so a live
process's events are never delivered by another one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloudstation.events.contract import Event, EventKind

OUTBOX_FILENAME = "outbox.sqlite3"

# No secondary index: rows are appended and read in seq (rowid) order, and almost always belong to
# one owner, so every extra B-tree would only slow the journal down.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner         TEXT    NOT NULL,
    msg_id        TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    deployment_id TEXT    NOT NULL,
    data          BLOB    NOT NULL,
    created_at    REAL    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT    NOT NULL DEFAULT ''
);
"""


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


class Outbox:
    """One process's handle on the outbox in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / OUTBOX_FILENAME
        self._owners_dir = state_dir / "owners"
        self._owners_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.owner = new_owner_id()
        self._lock_fd = _hold_lock(self._owners_dir / f"{self.owner}.lock")
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed row survives a crash or kill of this process (and of the
        # server); only a power loss may drop the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Fewer, larger checkpoints: the journal churns (insert, then delete after the PubAck).
        self._db.execute("PRAGMA wal_autocheckpoint=4000")
        self._db.executescript(_SCHEMA)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    # -- writing -----------------------------------------------------------------------------------

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

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget delivered events (acknowledged by JetStream). Acks mostly come in order, so the
        seqs are deleted as ranges."""
        ranges = _as_ranges(sorted(seqs))
        if ranges:
            with self._transaction() as db:
                db.executemany("DELETE FROM events WHERE seq BETWEEN ? AND ?", ranges)

    def record_failure(self, seqs: Iterable[int], error: str) -> None:
        """Count one more failed attempt for ``seqs`` and remember why (a secret-free message)."""
        rows = [(error[:500], s) for s in seqs]
        if rows:
            with self._transaction() as db:
                db.executemany("UPDATE events SET attempts = attempts + 1, last_error = ? WHERE seq = ?", rows)

    def adopt_orphans(self) -> int:
        """Take over the events of every dead owner; returns how many were adopted."""
        adopted = 0
        for owner in self._other_owners():
            lock_path = self._owners_dir / f"{owner}.lock"
            fd = _try_lock(lock_path)
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

    def next_batch(self, after_seq: int, limit: int) -> list[StoredEvent]:
        """This owner's events with ``seq > after_seq``, oldest first."""
        rows = self._db.execute(
            "SELECT seq, kind, subject, data, msg_id, deployment_id, created_at, attempts FROM events "
            "WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?",
            (self.owner, after_seq, limit),
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

    def count(self, *, mine: bool = True) -> int:
        """How many undelivered events this owner (or, with ``mine=False``, anyone) has."""
        if mine:
            row = self._db.execute("SELECT COUNT(*) FROM events WHERE owner = ?", (self.owner,)).fetchone()
        else:
            row = self._db.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(row[0])

    def pending(self) -> Iterator[PendingEvent]:
        """Every undelivered event in this outbox, whoever owns it, oldest first (streamed)."""
        now = time.time()
        alive: dict[str, bool] = {}
        for seq, owner, kind, subject, msg_id, dep, created, attempts, err in self._db.execute(
            "SELECT seq, owner, kind, subject, msg_id, deployment_id, created_at, attempts, last_error "
            "FROM events ORDER BY seq"
        ):
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
            )

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; release this owner's lock (its lock file goes if it owns no events)."""
        with contextlib.suppress(sqlite3.Error):
            if self.count() == 0:
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
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _other_owners(self) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT owner FROM events WHERE owner != ?", (self.owner,))
        return [r[0] for r in rows]

    def _owner_alive(self, owner: str) -> bool:
        fd = _try_lock(self._owners_dir / f"{owner}.lock")
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


def _hold_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _try_lock(path: Path) -> int | None:
    """Lock ``path`` if nobody holds it; None when a live process does."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd

"""The outbox's SQLite file: its schema, opening it, and SQLite's errors said as ours.

Opening sets WAL mode (a committed row survives a crash or kill of any process), checks that the file
is a ``cs`` outbox (any other database is refused, never changed), adds the ``set_aside`` column to an
outbox written by an older ``cs``, and keeps the database, its ``-wal`` and its ``-shm`` 0600 whatever
the umask. The journal's operations are in :mod:`cloudstation.events.outbox`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from cloudstation.errors import OutboxError, OutboxFullError
from cloudstation.events.statefiles import FILE_MODE, private_file

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
    last_error    TEXT    NOT NULL DEFAULT '',
    set_aside     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_COLUMNS = {
    "seq",
    "owner",
    "msg_id",
    "kind",
    "subject",
    "deployment_id",
    "data",
    "created_at",
    "attempts",
    "last_error",
}


def private_files(path: Path) -> None:
    """The database and its ``-wal``/``-shm`` 0600 (before SQLite opens it: they copy the database's mode)."""
    private_file(path)
    _chmod_companions(path)  # left 0644 by an older cs


def open_database(path: Path) -> sqlite3.Connection:
    """Open (or create) the outbox at ``path``; raises :class:`sqlite3.Error` or :class:`OutboxError`."""
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        _prepare(db, path)
    except (sqlite3.Error, OutboxError):
        db.close()
        raise
    return db


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed row survives a crash or kill of this process (and of the
    # server); only a power loss may drop the last transactions.
    db.execute("PRAGMA synchronous=NORMAL")
    # Fewer, larger checkpoints: the journal churns (insert, then delete after the PubAck).
    db.execute("PRAGMA wal_autocheckpoint=4000")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables - {"events", "meta", "sqlite_sequence"}:
        raise OutboxError(f"{path} is a database but not a cs outbox (it has other tables); move it away")
    if "events" in tables:
        columns = {r[1] for r in db.execute("PRAGMA table_info(events)")}
        if not columns >= _COLUMNS:
            raise OutboxError(f"{path} is a database but not a cs outbox (unknown schema); move it away")
        if "set_aside" not in columns:  # an outbox written by an older cs
            db.execute("ALTER TABLE events ADD COLUMN set_aside INTEGER NOT NULL DEFAULT 0")
    db.executescript(_SCHEMA)
    _chmod_companions(path)


def _chmod_companions(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.chmod(f"{path}{suffix}", FILE_MODE)


def translate(path: Path, exc: sqlite3.Error) -> Exception:
    """Our error for a SQLite error on the outbox at ``path``: a full disk, or a file that is not (or no
    longer) an outbox, cannot be written, or is locked too long."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return OutboxFullError(f"the disk holding the outbox {path} is full: free space there")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR):
        return OutboxError(f"CS_STATE_DIR: cannot use the outbox {path}: {exc}")
    if isinstance(exc, sqlite3.DatabaseError) and code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return OutboxError(f"{path} is not a cs outbox or is damaged ({exc}); move it away")
    if code == sqlite3.SQLITE_BUSY:
        return OutboxError(f"the outbox {path} is locked by another process for too long")
    return OutboxError(f"the outbox {path} cannot be used: {exc}")

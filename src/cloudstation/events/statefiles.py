"""The state directory's files: created private (0700 directories, 0600 files, whatever the umask) and
the owner locks (``flock``) that tell a live ``cs`` process from a dead one.

A path that cannot be used is an :class:`~cloudstation.errors.OutboxError` (exit 2) naming it.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from cloudstation.errors import OutboxError

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` 0700 (parents as needed); a directory we created is 0700 whatever the umask."""
    try:
        path.mkdir(parents=True, exist_ok=False, mode=DIR_MODE)
        os.chmod(path, DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise OutboxError(f"CS_STATE_DIR: {path} exists and is not a directory") from None
    except OSError as exc:
        raise OutboxError(f"CS_STATE_DIR: cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutboxError(f"CS_STATE_DIR: {path} is not writable")


def private_file(path: Path) -> None:
    """Create ``path`` 0600 if it does not exist; an existing file of ours is made 0600."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    except IsADirectoryError:
        raise OutboxError(f"{path} is a directory, not a cs outbox; move it away") from None
    except OSError as exc:
        raise OutboxError(f"CS_STATE_DIR: cannot open {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutboxError(f"{path} is not a regular file; move it away")
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def hold_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def try_lock(path: Path) -> int | None:
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

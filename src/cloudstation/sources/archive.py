"""Safe extraction of an uploaded tar archive (``.tar``, ``.tar.gz``, ``.tgz``, bz2, xz) into a directory.

Every member is checked before anything is written: absolute paths, ``..`` components, device and FIFO
files, links whose target escapes the destination, paths that pass through a symlink of the archive, and
an expanded size or member count past a limit are refused with an :class:`UnsafeArchiveError` naming the
member. Extraction then runs with tarfile's ``data`` filter (which also checks links against the real
filesystem) into a staging directory beside the destination, renamed into place only when complete: a
refused or failed archive leaves nothing behind.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from cloudstation.sources.errors import SourceError, UnsafeArchiveError

DEFAULT_MAX_EXTRACTED_BYTES = 4 * 1024**3
DEFAULT_MAX_MEMBERS = 200_000


def extract_tar_safely(
    archive: Path,
    dest: Path,
    *,
    max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> Path:
    """Extract ``archive`` into ``dest`` (absent or an empty directory) and return ``dest``.

    Blocking: run it in a thread from async code.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SourceError(f"extraction destination {dest} exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            check_members(members, max_extracted_bytes=max_extracted_bytes, max_members=max_members)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
            try:
                tar.extractall(staging, members=members, filter="data")
                staging.chmod(0o755)
                if dest.exists():
                    dest.rmdir()
                staging.rename(dest)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except tarfile.FilterError as exc:
        member = exc.tarinfo.name if exc.tarinfo is not None else "?"
        raise UnsafeArchiveError(f"archive member {_shown(member)} refused: {exc}") from None
    except (tarfile.TarError, EOFError) as exc:
        raise SourceError(f"uploaded source is not a valid tar archive: {exc}") from None
    except OSError as exc:
        raise SourceError(f"could not extract the uploaded archive into {dest}: {exc.strerror or exc}") from None
    return dest


def check_members(
    members: list[tarfile.TarInfo],
    *,
    max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> None:
    """Refuse the first unsafe member with an :class:`UnsafeArchiveError` naming it."""
    if len(members) > max_members:
        raise UnsafeArchiveError(f"archive has {len(members)} members, more than the limit of {max_members}")
    symlinks = {_normal(member.name) for member in members if member.issym()}
    total = 0
    for member in members:
        _check_member(member, symlinks)
        total += member.size if member.isreg() else 0
        if total > max_extracted_bytes:
            raise UnsafeArchiveError(
                f"archive expands to more than the limit of {max_extracted_bytes} bytes "
                f"(at member {_shown(member.name)})"
            )


def _check_member(member: tarfile.TarInfo, symlinks: set[str]) -> None:
    name = member.name

    def refuse(reason: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"archive member {_shown(name)} refused: {reason}")

    if name.startswith("/") or posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise refuse("absolute path")
    if ".." in name.split("/"):
        raise refuse("path traversal ('..')")
    if member.ischr() or member.isblk():
        raise refuse("device file")
    if member.isfifo():
        raise refuse("FIFO file")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise refuse(f"unsupported member type {member.type!r}")
    normal = _normal(name)
    parts = normal.split("/")
    for depth in range(1, len(parts)):
        prefix = "/".join(parts[:depth])
        if prefix in symlinks:
            raise refuse(f"path goes through the symlink {_shown(prefix)}")
    if member.issym():
        target = member.linkname
        if posixpath.isabs(target):
            raise refuse(f"symlink to absolute path {_shown(target)}")
        if _escapes(posixpath.join(posixpath.dirname(normal), target)):
            raise refuse(f"symlink {_shown(target)} escapes the destination")
    if member.islnk():
        target = member.linkname
        if posixpath.isabs(target) or _escapes(target):
            raise refuse(f"hard link to {_shown(target)} escapes the destination")


def _normal(name: str) -> str:
    return posixpath.normpath(name.replace(os.sep, "/")).lstrip("/")


def _escapes(relative: str) -> bool:
    normal = posixpath.normpath(relative)
    return normal == ".." or normal.startswith("../")


def _shown(value: str) -> str:
    return repr(value[:200] + ("..." if len(value) > 200 else ""))

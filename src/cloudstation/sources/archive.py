"""Safe extraction of an uploaded tar archive (``.tar``, ``.tar.gz``, ``.tgz``, bz2, xz) into a directory.

Two passes. The first streams the member headers once (nothing is extracted, no member list is kept):
absolute paths, ``..`` components, links whose target escapes the destination, paths that pass through a
symlink of the archive, and a member count or expanded size past its limit are refused with an
:class:`UnsafeArchiveError` naming the member, **as soon as they are read** (a 10 MB tarball of a million
empty members stops at the member limit, without a million headers in memory). FIFO and device members
are skipped (an app has no use for them, and creating them needs privileges) and reported to
``on_skip``. The second pass extracts the accepted members with tarfile's ``data`` filter (which also
checks links against the real filesystem) into a staging directory beside the destination, renamed into
place only when complete: a refused or failed archive leaves nothing behind.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO, cast

from cloudstation.sources.errors import SourceError, UnsafeArchiveError

DEFAULT_MAX_EXTRACTED_BYTES = 4 * 1024**3
DEFAULT_MAX_MEMBERS = 200_000

SkipHandler = Callable[[str, str], None]
"""Called with (member name, kind: ``"FIFO"`` or ``"device"``) for each member that is not extracted."""


def extract_tar_safely(
    archive: Path,
    dest: Path,
    *,
    max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
    on_skip: SkipHandler | None = None,
) -> Path:
    """Extract ``archive`` into ``dest`` (absent or an empty directory) and return ``dest``.

    Blocking: run it in a thread from async code.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SourceError(f"extraction destination {dest} exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        skipped = scan_archive(archive, max_extracted_bytes=max_extracted_bytes, max_members=max_members)
        with tarfile.open(archive, mode="r:*") as tar:
            members = [m for m in tar.getmembers() if not _special(m)]
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
    if on_skip is not None:
        for name, kind in skipped:
            on_skip(name, kind)
    return dest


def scan_archive(
    archive: Path,
    *,
    max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[tuple[str, str]]:
    """Stream the headers of ``archive`` and refuse the first unsafe member; the skipped (name, kind)s.

    Raises :class:`UnsafeArchiveError`, or tarfile's errors for an archive that is not one.
    """
    count_members(archive, max_extracted_bytes=max_extracted_bytes, max_members=max_members)
    skipped: list[tuple[str, str]] = []
    symlinks: set[str] = set()
    names: list[tuple[str, str]] = []  # (normalised, original) of every kept member, for the symlink check
    count = 0
    total = 0
    with tarfile.open(archive, mode="r|*") as tar:
        for member in tar:
            tar.members.clear()  # type: ignore[attr-defined]  # a streaming read keeps no member list
            count += 1
            if count > max_members:
                raise UnsafeArchiveError(f"archive has more than the limit of {max_members} members")
            _check_member(member, symlinks)
            if _special(member):
                skipped.append((member.name, "FIFO" if member.isfifo() else "device"))
                continue
            total += member.size if member.isreg() else 0
            if total > max_extracted_bytes:
                raise UnsafeArchiveError(
                    f"archive expands to more than the limit of {max_extracted_bytes} bytes "
                    f"(at member {_shown(member.name)})"
                )
            normal = _normal(member.name)
            if member.issym():
                symlinks.add(normal)
            names.append((normal, member.name))
    for normal, name in names:  # a symlink defined after a member that goes through it
        _check_through_symlinks(normal, name, symlinks)
    return skipped


_BLOCK = 512
_META_TYPES = frozenset({b"L", b"K", b"x", b"g"})  # GNU long name/link, pax headers: not members


def count_members(
    archive: Path,
    *,
    max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> int:
    """Count members and regular-file bytes from the raw headers, refusing past a limit as soon as it is.

    tarfile parses about ten thousand headers a second here; this reads only each header's size and
    type, many times faster, so a hostile archive is refused in about a second. It is lenient: anything
    it does not understand ends the count, and tarfile's full pass judges the archive.
    """
    count = total = 0
    pax_size: int | None = None
    with _open_decompressed(archive) as stream:
        while True:
            header = stream.read(_BLOCK)
            if len(header) < _BLOCK or header == bytes(_BLOCK):
                return count
            size = _header_size(header[124:136])
            if size is None:
                return count
            kind = header[156:157]
            if kind in _META_TYPES:
                data = stream.read(_padded(size)) if kind == b"x" else None
                if data is not None:
                    pax_size = _pax_size(data[:size])
                else:
                    _skip(stream, _padded(size))
                continue
            if pax_size is not None:
                size, pax_size = pax_size, None
            count += 1
            if count > max_members:
                raise UnsafeArchiveError(f"archive has more than the limit of {max_members} members")
            if kind in (b"0", b"\0", b"7"):
                total += size
                if total > max_extracted_bytes:
                    name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
                    raise UnsafeArchiveError(
                        f"archive expands to more than the limit of {max_extracted_bytes} bytes "
                        f"(at member {_shown(name)})"
                    )
                _skip(stream, _padded(size))
            elif kind not in (b"1", b"2", b"3", b"4", b"5", b"6"):
                _skip(stream, _padded(size))


def _open_decompressed(archive: Path) -> BinaryIO:
    with archive.open("rb") as probe:
        magic = probe.read(6)
    opened: object
    if magic.startswith(b"\x1f\x8b"):
        opened = gzip.open(archive, "rb")  # noqa: SIM115 (the caller closes it)
    elif magic.startswith(b"BZh"):
        opened = bz2.open(archive, "rb")  # noqa: SIM115 (the caller closes it)
    elif magic.startswith(b"\xfd7zXZ\x00"):
        opened = lzma.open(archive, "rb")  # noqa: SIM115 (the caller closes it)
    else:
        opened = archive.open("rb")
    return cast(BinaryIO, opened)


def _header_size(field: bytes) -> int | None:
    if field[:1] and field[0] & 0x80:  # GNU base-256
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        return None


def _pax_size(data: bytes) -> int | None:
    for record in data.split(b"\n"):
        _, _, item = record.partition(b" ")
        key, _, value = item.partition(b"=")
        if key == b"size" and value.isdigit():
            return int(value)
    return None


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _skip(stream: IO[bytes], size: int) -> None:
    if size:
        stream.seek(size, os.SEEK_CUR)


def check_members(
    members: list[tarfile.TarInfo],
    *,
    max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> None:
    """Refuse the first unsafe member of an already-read list with an :class:`UnsafeArchiveError`."""
    if len(members) > max_members:
        raise UnsafeArchiveError(f"archive has {len(members)} members, more than the limit of {max_members}")
    symlinks = {_normal(member.name) for member in members if member.issym()}
    total = 0
    for member in members:
        _check_member(member, symlinks)
        _check_through_symlinks(_normal(member.name), member.name, symlinks)
        total += member.size if member.isreg() else 0
        if total > max_extracted_bytes:
            raise UnsafeArchiveError(
                f"archive expands to more than the limit of {max_extracted_bytes} bytes "
                f"(at member {_shown(member.name)})"
            )


def _special(member: tarfile.TarInfo) -> bool:
    return member.ischr() or member.isblk() or member.isfifo()


def _refuse(name: str, reason: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"archive member {_shown(name)} refused: {reason}")


def _check_through_symlinks(normal: str, name: str, symlinks: set[str]) -> None:
    parts = normal.split("/")
    for depth in range(1, len(parts)):
        prefix = "/".join(parts[:depth])
        if prefix in symlinks:
            raise _refuse(name, f"path goes through the symlink {_shown(prefix)}")


def _check_member(member: tarfile.TarInfo, symlinks: set[str]) -> None:
    """Refuse a member that is unsafe on its own (``symlinks``: those seen so far, for the path check)."""
    name = member.name
    if name.startswith("/") or posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise _refuse(name, "absolute path")
    if ".." in name.split("/"):
        raise _refuse(name, "path traversal ('..')")
    if _special(member):
        return
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise _refuse(name, f"unsupported member type {member.type!r}")
    normal = _normal(name)
    _check_through_symlinks(normal, name, symlinks)
    if member.issym():
        target = member.linkname
        if posixpath.isabs(target):
            raise _refuse(name, f"symlink to absolute path {_shown(target)}")
        if _escapes(posixpath.join(posixpath.dirname(normal), target)):
            raise _refuse(name, f"symlink {_shown(target)} escapes the destination")
    if member.islnk():
        target = member.linkname
        if posixpath.isabs(target) or _escapes(target):
            raise _refuse(name, f"hard link to {_shown(target)} escapes the destination")


def _normal(name: str) -> str:
    return posixpath.normpath(name.replace(os.sep, "/")).lstrip("/")


def _escapes(relative: str) -> bool:
    normal = posixpath.normpath(relative)
    return normal == ".." or normal.startswith("../")


def _shown(value: str) -> str:
    return repr(value[:200] + ("..." if len(value) > 200 else ""))

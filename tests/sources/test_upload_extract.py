"""``local_upload`` sources: download from a local HTTP server, then safe extraction. Malicious archives
are built here with ``tarfile``; each must be refused with a message naming the member, leaving nothing."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudstation.redaction import display_url
from cloudstation.sources import (
    InvalidSourceError,
    SourceError,
    UnsafeArchiveError,
    extract_tar_safely,
    fetch_upload,
)

from .sources_testkit import file_server

SIGNATURE = "X-Amz-Signature=CANARYsig0123456789"

Member = tuple[tarfile.TarInfo, bytes | None]


def file_member(name: str, content: bytes = b"data\n") -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def special_member(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def make_tar(members: list[Member], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:  # type: ignore[call-overload]
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def good_archive() -> bytes:
    directory = tarfile.TarInfo("app")
    directory.type = tarfile.DIRTYPE
    directory.mode = 0o755
    return make_tar(
        [
            (directory, None),
            file_member("app/main.py", b"print('hi')\n"),
            file_member("./Dockerfile", b"FROM scratch\n"),
            link_member("app/link.py", "main.py"),
            link_member("node_modules/.bin/tool", "../tool/cli.js"),
            file_member("node_modules/tool/cli.js"),
            link_member("app/hard.py", "app/main.py", tarfile.LNKTYPE),
        ]
    )


def write(tmp_path: Path, data: bytes) -> Path:
    archive = tmp_path / "upload.tar.gz"
    archive.write_bytes(data)
    return archive


def test_extracts_a_good_archive(tmp_path: Path) -> None:
    dest = extract_tar_safely(write(tmp_path, good_archive()), tmp_path / "src")
    assert (dest / "app" / "main.py").read_text() == "print('hi')\n"
    assert (dest / "Dockerfile").exists()
    assert (dest / "app" / "link.py").read_text() == "print('hi')\n"
    assert (dest / "app" / "hard.py").read_text() == "print('hi')\n"
    assert (dest / "node_modules" / ".bin" / "tool").read_text() == "data\n"
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


UNSAFE: dict[str, tuple[Callable[[], list[Member]], str, str]] = {
    "dotdot": (lambda: [file_member("ok.txt"), file_member("../evil.sh")], "'../evil.sh'", "traversal"),
    "nested dotdot": (lambda: [file_member("a/../../evil")], "'a/../../evil'", "traversal"),
    "absolute": (lambda: [file_member("/etc/cron.d/evil")], "'/etc/cron.d/evil'", "absolute path"),
    "symlink out": (lambda: [link_member("app/up", "../../outside")], "'app/up'", "escapes"),
    "symlink absolute": (lambda: [link_member("passwd", "/etc/passwd")], "'passwd'", "absolute"),
    "write through symlink": (
        lambda: [link_member("dir", "."), file_member("dir/x")],
        "'dir/x'",
        "through the symlink 'dir'",
    ),
    "hardlink out": (
        lambda: [link_member("h", "../../etc/passwd", tarfile.LNKTYPE)],
        "'h'",
        "hard link",
    ),
    "symlink after the member that goes through it": (
        lambda: [file_member("dir/x"), link_member("dir", ".")],
        "'dir/x'",
        "through the symlink 'dir'",
    ),
    "special member with a traversal": (
        lambda: [special_member("../pipe", tarfile.FIFOTYPE)],
        "'../pipe'",
        "traversal",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_members_are_refused_and_nothing_is_left(tmp_path: Path, case: str) -> None:
    build, member, reason = UNSAFE[case]
    archive = write(tmp_path, make_tar([file_member("first.txt"), *build()]))
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_tar_safely(archive, tmp_path / "out" / "src")
    message = str(caught.value)
    assert member in message and reason in message
    assert "\n" not in message
    assert not (tmp_path / "out" / "src").exists()
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.sh").exists()


def test_fifo_and_device_members_are_skipped_and_reported(tmp_path: Path) -> None:
    members = [
        file_member("app/main.py"),
        special_member("app/pipe", tarfile.FIFOTYPE),
        special_member("dev/null", tarfile.CHRTYPE),
        special_member("sda", tarfile.BLKTYPE),
    ]
    skipped: list[tuple[str, str]] = []
    dest = extract_tar_safely(
        write(tmp_path, make_tar(members)), tmp_path / "src", on_skip=lambda *item: skipped.append(item)
    )
    assert skipped == [("app/pipe", "FIFO"), ("dev/null", "device"), ("sda", "device")]
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["app", "app/main.py"]


def _many_empty_members(path: Path, count: int) -> None:
    """A tar.gz of ``count`` empty members (one header repeated: a tar may hold a name many times)."""
    import gzip

    header = tarfile.TarInfo("f").tobuf(format=tarfile.GNU_FORMAT)
    with gzip.open(path, "wb", compresslevel=6) as gz:
        for _ in range(count // 1000):
            gz.write(header * 1000)
        gz.write(b"\0" * 1024)


_REFUSE = """
import sys
from pathlib import Path
from cloudstation.sources.archive import extract_tar_safely
from cloudstation.sources.errors import UnsafeArchiveError
try:
    extract_tar_safely(Path(sys.argv[1]), Path(sys.argv[2]))
except UnsafeArchiveError as exc:
    print(exc)
# VmHWM: this process's own peak RSS (ru_maxrss would include the forking parent's)
status = Path("/proc/self/status").read_text()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""


def test_a_million_empty_members_are_refused_at_the_limit_without_reading_them_all(tmp_path: Path) -> None:
    import subprocess
    import sys

    archive = tmp_path / "million.tar.gz"
    _many_empty_members(archive, 1_000_000)
    assert archive.stat().st_size < 10 * 1024 * 1024
    proc = subprocess.run(
        [sys.executable, "-c", _REFUSE, str(archive), str(tmp_path / "src")],
        capture_output=True,
        text=True,
        check=True,
    )
    message, peak_kib = proc.stdout.splitlines()
    assert message == "archive has more than the limit of 200000 members"
    # No list of a million (or of 200k) headers is ever built: main's getmembers() peaked at ~400 MB.
    assert int(peak_kib) < 120 * 1024, peak_kib
    assert not (tmp_path / "src").exists()


def test_member_limit_counts_while_reading(tmp_path: Path) -> None:
    archive = write(tmp_path, make_tar([file_member(f"f{i}") for i in range(6)]))
    with pytest.raises(UnsafeArchiveError, match="more than the limit of 5 members"):
        extract_tar_safely(archive, tmp_path / "src", max_members=5)
    assert (extract_tar_safely(archive, tmp_path / "ok", max_members=6) / "f5").exists()


def test_links_checked_against_the_real_tree_too(tmp_path: Path) -> None:
    # 'q' -> 'p/..' looks inside lexically, but 'p' -> '.' makes it the parent of the destination.
    archive = write(tmp_path, make_tar([link_member("p", "."), link_member("q", "p/..")]))
    with pytest.raises(UnsafeArchiveError, match="archive member 'q' refused"):
        extract_tar_safely(archive, tmp_path / "out" / "src")
    assert list((tmp_path / "out").iterdir()) == []


def test_extracted_size_limit(tmp_path: Path) -> None:
    archive = write(tmp_path, make_tar([file_member("a", b"x" * 600), file_member("b", b"y" * 600)]))
    with pytest.raises(UnsafeArchiveError, match=r"more than the limit of 1000 bytes \(at member 'b'\)"):
        extract_tar_safely(archive, tmp_path / "src", max_extracted_bytes=1000)
    assert not (tmp_path / "src").exists()


def test_not_a_tar_archive(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a valid tar archive"):
        extract_tar_safely(write(tmp_path, b"<html>not a tarball</html>"), tmp_path / "src")
    assert not (tmp_path / "src").exists()


def test_plain_tar_is_accepted(tmp_path: Path) -> None:
    archive = write(tmp_path, make_tar([file_member("a.txt")], mode="w"))
    assert (extract_tar_safely(archive, tmp_path / "src") / "a.txt").exists()


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    info, content = file_member("run.sh")
    info.mode = 0o4755
    dest = extract_tar_safely(write(tmp_path, make_tar([(info, content)])), tmp_path / "src")
    assert (dest / "run.sh").stat().st_mode & 0o4000 == 0


async def test_fetch_upload_downloads_and_extracts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    filters_before = list(logging.getLogger("httpx").filters)
    with file_server({"/uploads/src.tar.gz": good_archive()}) as base:
        dest = await fetch_upload(f"{base}/uploads/src.tar.gz?{SIGNATURE}", tmp_path / "src")
    assert (dest / "app" / "main.py").exists()
    assert f"GET {base}/uploads/src.tar.gz?***" in caplog.text  # httpx's INFO line, query hidden
    assert SIGNATURE not in caplog.text
    assert logging.getLogger("httpx").filters == filters_before


@pytest.mark.parametrize("announce_length", [True, False])
async def test_download_past_the_size_limit_is_aborted(tmp_path: Path, announce_length: bool) -> None:
    big = make_tar([file_member("blob", bytes(range(256)) * 4096)], mode="w")
    with (
        file_server({"/big.tar": big}, announce_length=announce_length) as base,
        pytest.raises(SourceError) as caught,
    ):
        await fetch_upload(f"{base}/big.tar?{SIGNATURE}", tmp_path / "src", max_bytes=100_000)
    assert str(caught.value) == f"download of {base}/big.tar exceeds the size limit of 100000 bytes"
    assert not (tmp_path / "src").exists()


async def test_http_error_status_is_reported_without_the_query(tmp_path: Path) -> None:
    with file_server({}) as base, pytest.raises(SourceError) as caught:
        await fetch_upload(f"{base}/missing.tar.gz?{SIGNATURE}", tmp_path / "src")
    assert str(caught.value) == f"download of {base}/missing.tar.gz failed: HTTP 404"


async def test_unsafe_upload_is_refused_after_download(tmp_path: Path) -> None:
    with (
        file_server({"/evil.tgz": make_tar([file_member("../../evil")])}) as base,
        pytest.raises(UnsafeArchiveError, match=r"'\.\./\.\./evil'"),
    ):
        await fetch_upload(f"{base}/evil.tgz", tmp_path / "src")
    assert not await asyncio.to_thread(os.listdir, tmp_path)


async def test_download_timeout(tmp_path: Path) -> None:
    with (
        file_server({"/slow.tgz": good_archive()}, stall_seconds=3) as base,
        pytest.raises(SourceError) as caught,
    ):
        await fetch_upload(f"{base}/slow.tgz?{SIGNATURE}", tmp_path / "src", timeout_s=0.5)
    message = str(caught.value)
    assert message.startswith(f"download of {base}/slow.tgz") and "tim" in message
    assert SIGNATURE not in message


async def test_unreachable_server(tmp_path: Path) -> None:
    with file_server({}) as base:
        pass  # the port is free again once the server is closed
    with pytest.raises(SourceError) as caught:
        await fetch_upload(f"{base}/src.tar.gz?{SIGNATURE}", tmp_path / "src", timeout_s=5)
    assert str(caught.value).startswith(f"download of {base}/src.tar.gz failed:")
    assert SIGNATURE not in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.tgz", "file:///etc/passwd", "not a url"])
async def test_non_http_source_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidSourceError, match="sourceUrl must be an http"):
        await fetch_upload(url, tmp_path / "src")


def test_display_url_drops_credentials_and_query() -> None:
    shown = display_url(f"https://user:pw@bucket.example:8443/a/b.tgz?{SIGNATURE}#frag")
    assert shown == "https://bucket.example:8443/a/b.tgz"

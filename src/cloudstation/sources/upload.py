"""Fetching a ``local_upload`` source: download the tar.gz at ``sourceUrl``, then extract it safely.

The download streams to a private temporary file with a timeout and a size limit (aborted as soon as the
limit is passed); extraction is :func:`cloudstation.sources.archive.extract_tar_safely`. Source URLs are
often presigned (credentials in the query string), so messages show only scheme, host and path, and
httpx's request log lines lose their query strings while a download runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from cloudstation.redaction import MASK, display_url
from cloudstation.sources.archive import DEFAULT_MAX_EXTRACTED_BYTES, SkipHandler, extract_tar_safely
from cloudstation.sources.errors import InvalidSourceError, SourceError, redact

DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_DOWNLOAD_BYTES = 1024**3
_URL_QUERY = re.compile(r"(https?://[^\s?#\"']*)\?[^\s#\"']*")


async def fetch_upload(
    source_url: str,
    dest: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES,
    on_skip: SkipHandler | None = None,
) -> Path:
    """Download the archive at ``source_url``, extract it into ``dest`` (absent or empty), return ``dest``.

    ``timeout_s`` bounds the download, ``max_bytes`` its size, ``max_extracted_bytes`` the extracted size.
    ``on_skip`` hears of each FIFO or device member left out (called in a worker thread).
    """
    with tempfile.TemporaryDirectory(prefix="cs-upload-") as scratch:
        archive = Path(scratch) / "source.tar.gz"
        await download(source_url, archive, timeout_s=timeout_s, max_bytes=max_bytes)
        return await asyncio.to_thread(
            extract_tar_safely, archive, dest, max_extracted_bytes=max_extracted_bytes, on_skip=on_skip
        )


async def download(
    source_url: str,
    target: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
) -> int:
    """Stream ``source_url`` (http/https) into ``target``; return the byte count.

    ``timeout_s`` bounds the whole download; past ``max_bytes`` it is aborted and ``target`` removed.
    """
    _validate(source_url)
    shown = display_url(source_url)
    secrets = _url_secrets(source_url)
    received = 0
    try:
        async with (
            asyncio.timeout(timeout_s),
            _queries_hidden_from_httpx_logs(),
            httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=True) as client,
            client.stream("GET", source_url) as response,
        ):
            if response.status_code != 200:
                raise SourceError(f"download of {shown} failed: HTTP {response.status_code}")
            announced = response.headers.get("content-length", "")
            if announced.isdigit() and int(announced) > max_bytes:
                raise _too_large(shown, max_bytes)
            with target.open("wb") as sink:
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        raise _too_large(shown, max_bytes)
                    sink.write(chunk)
    except SourceError:
        _discard(target)
        raise
    except TimeoutError:
        _discard(target)
        raise SourceError(f"download of {shown} timed out after {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        _discard(target)
        detail = redact(str(exc), secrets) or type(exc).__name__
        raise SourceError(f"download of {shown} failed: {detail}") from None
    except OSError as exc:
        _discard(target)
        raise SourceError(f"could not store the download of {shown}: {exc.strerror or exc}") from None
    return received


def _validate(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidSourceError(f"sourceUrl must be an http(s) URL (got {display_url(url)!r})")


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    return [url, parts.query, parts.password or "", parts.fragment]


def _too_large(shown: str, max_bytes: int) -> SourceError:
    return SourceError(f"download of {shown} exceeds the size limit of {max_bytes} bytes")


class _HideQueries(logging.Filter):
    """httpx logs each request URL at INFO; a presigned URL's query string is a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = _URL_QUERY.sub(rf"\g<1>?{MASK}", message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


@contextlib.asynccontextmanager
async def _queries_hidden_from_httpx_logs() -> AsyncIterator[None]:
    logger, hide = logging.getLogger("httpx"), _HideQueries()
    logger.addFilter(hide)
    try:
        yield
    finally:
        logger.removeFilter(hide)


def _discard(target: Path) -> None:
    target.unlink(missing_ok=True)

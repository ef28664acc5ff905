"""The one redactor: every secret ``cs`` knows is replaced by ``***`` before text leaves the process.

Build logs, error messages of the source fetchers and of the backend client, and the log records of
``httpx`` all use this module, so a secret is masked the same way wherever it would have shown.

- :class:`Redactor`: a set of secrets, masked longest first. Secrets shorter than
  :data:`MIN_SECRET_LEN` characters are not redacted by default (too many false hits in ordinary
  text, e.g. a build log); a redactor of one known credential (a git or backend token) masks it
  whatever its length (``min_length=1``). A multi-line secret (a PEM key) is redacted whole and line
  by line, since a log sees one line at a time.
- :func:`redact_query_token` and :func:`install_log_redaction`: the backend API takes its token as the
  ``accessToken`` query parameter and httpx logs every request URL at INFO, so a filter on the
  ``httpx`` and ``cloudstation.backend`` loggers masks any ``accessToken=<value>`` in a record.
- :func:`display_url`: a URL as it may be printed (no credentials, query or fragment: a presigned
  download's signature and a health check's token live there).

Imports nothing of ours: every room may use it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MIN_SECRET_LEN = 4
MASK = "***"


class Redactor:
    """Replaces every known secret in a text with :data:`MASK`. Add secrets as they become known."""

    def __init__(self, secrets: Iterable[str] = (), *, min_length: int = MIN_SECRET_LEN) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0
        self._spans_lines = False
        self._min_length = max(1, min_length)
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Add secrets (too-short ones are ignored); each line of a multi-line secret counts too."""
        before = len(self._secrets)
        for secret in secrets:
            if not secret:
                continue
            for candidate in (secret, *secret.splitlines()):
                if len(candidate) >= self._min_length:
                    self._secrets.add(candidate)
        if len(self._secrets) != before:
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
            self._longest = len(ordered[0])
            self._spans_lines = any("\n" in s for s in ordered)

    @property
    def spans_lines(self) -> bool:
        """Whether a secret contains a line break (then text must be redacted line by line)."""
        return self._spans_lines

    @property
    def longest(self) -> int:
        """Length of the longest secret (0 when there is none)."""
        return self._longest

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __len__(self) -> int:
        return len(self._secrets)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by :data:`MASK`."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def safe_cut(self, text: str, cut: int) -> int:
        """A cut position <= ``cut`` that does not split an occurrence of a secret in ``text``."""
        if self._pattern is None:
            return cut
        start = max(0, cut - self.longest + 1)
        for match in self._pattern.finditer(text, start, min(len(text), cut + self.longest)):
            if match.start() < cut < match.end():
                return match.start()
        return cut

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


# -- the backend's access token in request URLs ---------------------------------------------------------

_TOKEN_IN_QUERY = re.compile(r"(?i)(accessToken=)[^&\s'\"#]+")
_TOKEN_LOGGERS = ("httpx", "cloudstation.backend")


def redact_query_token(text: str) -> str:
    """``text`` with every ``accessToken=`` query value replaced by :data:`MASK`."""
    return _TOKEN_IN_QUERY.sub(rf"\g<1>{MASK}", text)


class QueryTokenFilter(logging.Filter):
    """Rewrites a record's final message so that no ``accessToken=`` value survives."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_query_token(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_redaction() -> None:
    """Attach :class:`QueryTokenFilter` to the ``httpx`` and ``cloudstation.backend`` loggers, once."""
    for name in _TOKEN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, QueryTokenFilter) for existing in logger.filters):
            logger.addFilter(QueryTokenFilter())


def display_url(url: str) -> str:
    """``url`` without credentials, query or fragment (they may hold secrets): safe to print."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

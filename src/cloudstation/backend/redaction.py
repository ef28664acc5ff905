"""Keeping the backend access token out of logs.

The backend API takes its token as the ``accessToken`` query parameter, and httpx logs every request URL
at INFO on the ``httpx`` logger. :func:`install_log_redaction` puts a filter on that logger (idempotent)
that rewrites any ``accessToken=<value>`` in a record to ``accessToken=[REDACTED]``.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"
_TOKEN_IN_QUERY = re.compile(r"(?i)(accessToken=)[^&\s'\"#]+")
_REDACTED_LOGGERS = ("httpx", "cloudstation.backend")


def redact_query_token(text: str) -> str:
    """``text`` with every ``accessToken=`` query value replaced."""
    return _TOKEN_IN_QUERY.sub(rf"\g<1>{REDACTED}", text)


def redact_secret(text: str, secret: str) -> str:
    """``text`` without ``secret`` (exact occurrences) nor any ``accessToken=`` query value."""
    if secret:
        text = text.replace(secret, REDACTED)
    return redact_query_token(text)


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
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, QueryTokenFilter) for existing in logger.filters):
            logger.addFilter(QueryTokenFilter())

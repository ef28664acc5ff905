"""Errors of the ``sources`` room: fetching a deployment's source (git clone, uploaded archive).

Every message is one line, names the repository/branch or archive member concerned, and never contains a
token: callers build messages through :func:`redact` with the secrets they hold (masked ``***``, as
everywhere in ``cs``: :mod:`cloudstation.redaction`).
"""

from __future__ import annotations

from collections.abc import Iterable

from cloudstation.errors import CsError, UsageError
from cloudstation.redaction import Redactor


class SourceError(CsError):
    """The source of a deployment could not be fetched (clone, download or extraction failed)."""


class GitNotInstalledError(SourceError):
    """The ``git`` executable is not on PATH."""


class BranchNotFoundError(SourceError):
    """The requested branch (or tag) does not exist in the repository."""


class SourceAuthError(SourceError):
    """The git server refused the credentials (or asked for some and none were given)."""


class UnsafeArchiveError(SourceError):
    """An uploaded archive holds a member that would escape or abuse the destination directory."""


class InvalidSourceError(UsageError):
    """A source parameter (repository, branch, provider, base URL, source URL) is malformed."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced (whatever its length), and folded onto one line."""
    return " ".join(Redactor(secrets, min_length=1).redact(text).split())

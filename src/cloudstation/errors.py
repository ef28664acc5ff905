"""The one exception hierarchy of ``cs`` and the process exit codes it maps to.

This module is the root of the import graph: it imports nothing of ours, and every layer (``events``
included) may raise these. Messages are one line, name what is wrong and where, and never contain a
secret value.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of every ``cs`` command."""

    OK = 0
    FAILED = 1  # the task or a phase failed
    USAGE = 2  # bad input: unknown task, invalid params, invalid config, invalid payload
    TEMPFAIL = 75  # not delivered in time; the event is kept in the outbox (EX_TEMPFAIL)
    NOPERM = 77  # authentication or permission refused (EX_NOPERM)


class CsError(Exception):
    """Base of every error ``cs`` raises on purpose. ``str(err)`` is a one-line, secret-free message."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(CsError):
    """Invalid input given by the user: a flag, a payload, a params document, a config file."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """An invalid setting (environment variable or configuration file)."""


class ContractError(UsageError):
    """A payload or identifier that does not satisfy the wire contract."""


class DeliveryError(CsError):
    """Events could not be delivered to JetStream; they are kept in the outbox."""

    exit_code = ExitCode.TEMPFAIL


class AuthError(DeliveryError):
    """The server refused our credentials or a permission; events are kept in the outbox."""

    exit_code = ExitCode.NOPERM


class RefusedError(DeliveryError):
    """The server refused an event for good (e.g. larger than its max_payload): the event is set aside in
    the outbox, reported by ``cs events pending`` and never resent."""

    exit_code = ExitCode.FAILED


class OutboxError(UsageError):
    """The state directory or the outbox in it cannot be used (not a directory, not writable, not an outbox)."""


class OutboxFullError(CsError):
    """The disk holding the outbox is full: events could not be journaled."""

    exit_code = ExitCode.FAILED

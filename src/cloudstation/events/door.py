"""The door every event passes before it is journaled, and again before it is sent.

An event that can never be delivered is refused here (:class:`~cloudstation.errors.ContractError`,
exit 2) instead of being journaled and retried for ever: a subject longer than
:data:`MAX_SUBJECT_BYTES` (the server drops a client whose control line is too long) or with an
invalid token, or a message (payload and headers) larger than the server's ``max_payload``
(:data:`DEFAULT_MAX_PAYLOAD` until the server has said). ``Publisher.submit`` calls :func:`admit`
for every producer; the publisher calls it again with the server's own ``max_payload`` before sending.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Final

from cloudstation.errors import ContractError
from cloudstation.events.contract import TOKEN_CHARS, Event, EventKind, shown

#: Longest subject, prefix included, in bytes: far below the server's control-line limit (4 KiB by
#: default), which drops the connection of a client that sends a longer ``PUB`` line.
MAX_SUBJECT_BYTES: Final = 1024
#: The server's ``max_payload`` until it has told us its own (the nats-server default, 1 MiB).
DEFAULT_MAX_PAYLOAD: Final = 1024 * 1024

_TOKEN_RE = re.compile(TOKEN_CHARS + "+")


def admit(event: Event, max_payload: int) -> Event:
    """``event`` if it can be delivered under ``max_payload``, else :class:`ContractError` saying why."""
    problem = _subject_problem(event.kind, event.subject)
    if problem:
        raise ContractError(problem)
    size = event.wire_size()
    if size > max_payload:
        raise ContractError(
            f"{event.subject}: message of {size} bytes (payload and headers) exceeds the server's "
            f"max_payload ({max_payload} bytes)"
        )
    return event


def admit_all(events: Sequence[Event], max_payload: int) -> None:
    """:func:`admit` for each of ``events``: a run of one deployment's log lines differs only in its
    payloads (and msg ids of one length), so the subject and headers are checked once per run."""
    shape: tuple[EventKind, str, str, int] | None = None
    headers = 0
    for event in events:
        key = (event.kind, event.subject, event.deployment_id, len(event.msg_id))
        if key != shape:
            admit(event, max_payload)
            shape, headers = key, event.wire_size() - len(event.data)
        elif len(event.data) + headers > max_payload:
            admit(event, max_payload)  # raises, saying why


@functools.lru_cache(maxsize=4096)
def _subject_problem(kind: EventKind, subject: str) -> str:
    """Why ``subject`` cannot be sent ("" when it can); cached: a log repeats one subject."""
    size = len(subject.encode("utf-8", "surrogatepass"))
    if size > MAX_SUBJECT_BYTES:
        return (
            f"{kind.value}: subject of {size} bytes is longer than {MAX_SUBJECT_BYTES} "
            "(deployment id or NATS_STREAM_PREFIX too long)"
        )
    if not all(_TOKEN_RE.fullmatch(token) for token in subject.split(".")):
        return f"{kind.value}: subject {shown(subject)} is not a valid NATS subject"
    return ""

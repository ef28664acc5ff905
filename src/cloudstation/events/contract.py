"""The wire contract with the CloudStation backend: subjects, payloads, headers, validation.

The backend already consumes these events, so field names, JSON types and subjects are fixed.
Payloads are typed msgspec Structs, validated when built and encoded exactly once; an :class:`Event`
is the encoded, addressed unit that the outbox stores and the publisher sends. Whether an event can be
delivered at all (subject and message size) is decided at the door, :mod:`cloudstation.events.door`.

Nothing of ours is imported here but the base modules (errors, vocabulary).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import msgspec

from cloudstation.errors import ContractError
from cloudstation.vocabulary import DESTROY_REASONS, DeploymentType


class EventKind(StrEnum):
    """Every event the platform consumes, named by its subject (without prefix or deployment id)."""

    STATUS_CHANGED = "deployment.status.changed"
    SUCCEEDED = "deployment.succeeded"
    FAILED = "deployment.failed"
    JOB_DESTROYED = "job.destroyed"
    BUILD_LOG = "build.log"
    BUILD_LOG_END = "build.log.end"

    @property
    def per_deployment_subject(self) -> bool:
        """True when the subject ends with ``.<deploymentId>``."""
        return self in (EventKind.BUILD_LOG, EventKind.BUILD_LOG_END)

    @property
    def is_barrier(self) -> bool:
        """Barrier events are published one at a time, after everything before them is acknowledged.

        That is every lifecycle event, and ``build.log.end`` (no log line may follow it).
        """
        return self is not EventKind.BUILD_LOG


# Header names carried by every event. ``Nats-Msg-Id`` is JetStream's de-duplication key.
HEADER_MSG_ID: Final = "Nats-Msg-Id"
HEADER_KIND: Final = "Cs-Event"
HEADER_DEPLOYMENT: Final = "Cs-Deployment-Id"

DeploymentStatus = Literal["IN_PROGRESS", "SUCCEEDED", "FAILED"]
LogOutput = Literal["stdout", "stderr"]
LogEndStatus = Literal["success", "failed"]


# -- bounds of the payload fields (the door, :mod:`cloudstation.events.door`, bounds subjects and sizes) --
#: Longest id (deploymentId, serviceId, teamId, userId, ownerId, job.destroyed id), in characters.
MAX_ID_CHARS: Final = 256
#: Longest phase tag, in characters.
MAX_PHASE_CHARS: Final = 64
#: ``jobId`` is a signed 64-bit integer (the backend's database column).
JOB_ID_MIN: Final = -(2**63)
JOB_ID_MAX: Final = 2**63 - 1

JobId = Annotated[int, msgspec.Meta(ge=JOB_ID_MIN, le=JOB_ID_MAX)]
Id = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)]
#: ``job.destroyed``'s reason: one of :data:`~cloudstation.vocabulary.DESTROY_REASONS` in practice, but any
#: non-empty reason of the params is passed through (platforms send others, ``archive``): so any short text.
DestroyReason = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_PHASE_CHARS,
        examples=list(DESTROY_REASONS),
        description="why the job was stopped: " + ", ".join(DESTROY_REASONS) + ", or another reason of the platform",
    ),
]
Phase = Annotated[str, msgspec.Meta(max_length=MAX_PHASE_CHARS)]


class _Payload(msgspec.Struct, forbid_unknown_fields=True, rename="camel", frozen=True):
    """Base of every payload: camelCase on the wire, unknown fields rejected, every field required."""


class StatusChanged(_Payload, frozen=True):
    """``deployment.status.changed``."""

    job_id: JobId
    status: DeploymentStatus


class DeploymentResult(_Payload, frozen=True):
    """``deployment.succeeded`` and ``deployment.failed`` (same fields)."""

    job_id: JobId
    type: DeploymentType
    deployment_id: Id
    service_id: Id
    team_id: Id
    user_id: Id
    owner_id: Id


class JobDestroyed(_Payload, frozen=True):
    """``job.destroyed``; ``id`` is the service id."""

    id: Id
    reason: DestroyReason


class BuildLog(_Payload, frozen=True):
    """``build.log.<deploymentId>``: one line of a deployment's output."""

    deployment_id: Id
    job_id: JobId
    service_id: Id
    owner_id: Id
    log_output: LogOutput
    content: str
    timestamp: int
    sequence: int
    phase: Phase


class BuildLogEnd(_Payload, frozen=True):
    """``build.log.end.<deploymentId>``: the deployment's log is complete."""

    deployment_id: Id
    job_id: JobId
    status: LogEndStatus


Payload = StatusChanged | DeploymentResult | JobDestroyed | BuildLog | BuildLogEnd

PAYLOAD_TYPES: Final[dict[EventKind, type[_Payload]]] = {
    EventKind.STATUS_CHANGED: StatusChanged,
    EventKind.SUCCEEDED: DeploymentResult,
    EventKind.FAILED: DeploymentResult,
    EventKind.JOB_DESTROYED: JobDestroyed,
    EventKind.BUILD_LOG: BuildLog,
    EventKind.BUILD_LOG_END: BuildLogEnd,
}

_ENCODER = msgspec.json.Encoder()
# One subject token: no separators, wildcards, white space or control characters, and not empty.
TOKEN_CHARS: Final = r"[^.*>\s\x00-\x1f\x7f]"
_TOKEN_RE = re.compile(TOKEN_CHARS + "+")


def parse_kind(text: str) -> EventKind:
    """The event kind named ``text`` (a contract subject without prefix), or a clear error."""
    try:
        return EventKind(text)
    except ValueError:
        known = ", ".join(k.value for k in EventKind)
        raise ContractError(f"unknown event kind {text!r} (known: {known})") from None


def validate_deployment_id(value: str, *, field: str = "deploymentId") -> str:
    """Return ``value`` if it can be used as one subject token, else raise :class:`ContractError`."""
    if not value:
        raise ContractError(f"{field} is empty; it is needed in the subject")
    if len(value) > MAX_ID_CHARS:
        raise ContractError(f"{field} is {len(value)} characters long; at most {MAX_ID_CHARS} are allowed")
    if not _TOKEN_RE.fullmatch(value):
        raise ContractError(
            f"{field} {shown(value)} cannot be used in a subject "
            "(it must not contain '.', '*', '>', white space or control characters)"
        )
    _check_utf8(value, field)
    return value


def validate_field(value: str, field: str, *, limit: int = MAX_ID_CHARS) -> str:
    """Return ``value`` if it fits the contract's bound on ``field`` (and is valid UTF-8)."""
    if len(value) > limit:
        raise ContractError(f"{field} is {len(value)} characters long; at most {limit} are allowed")
    _check_utf8(value, field)
    return value


def _check_utf8(value: str, field: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ContractError(f"{field} is not valid UTF-8") from None


def shown(value: str, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for error messages about hostile input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}...' ({len(value)} characters)"


def decode_payload(kind: EventKind, data: bytes | str) -> Payload:
    """Decode and validate JSON ``data`` as the payload of ``kind``; errors name the field."""
    payload: Payload = _decode(data, f"invalid {kind.value} payload", PAYLOAD_TYPES[kind])  # type: ignore[assignment]
    return payload


def decode_json(data: bytes | str, where: str) -> object:
    """Any JSON document handed to ``cs`` (a ``--batch`` line): bad input is a :class:`ContractError`."""
    return _decode(data, where, object)


def _decode(data: bytes | str, where: str, type_: Any) -> object:
    """One mapping of bad JSON to a :class:`ContractError` starting with ``where``.

    UTF-8 is checked here, not left to msgspec: 0.22 raised ``UnicodeDecodeError`` where 0.23 raises a
    ``DecodeError``, and the user must read the same words on both.
    """
    try:
        if isinstance(data, bytes):
            data.decode("utf-8")
        else:
            data.encode("utf-8")
    except UnicodeError:
        raise ContractError(f"{where}: not valid UTF-8") from None
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        raise ContractError(f"{where}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ContractError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ContractError(f"{where}: JSON nested too deeply") from None


def new_msg_id() -> str:
    """A fresh, unique ``Nats-Msg-Id`` (128 random bits, hex)."""
    return os.urandom(16).hex()


def new_msg_ids(n: int) -> list[str]:
    """``n`` fresh msg ids as :func:`new_msg_id` makes them, from one random read."""
    hexed = os.urandom(16 * n).hex()
    return [hexed[i : i + 32] for i in range(0, 32 * n, 32)]


@dataclass(frozen=True, slots=True)
class Event:
    """One addressed, encoded event: what the outbox stores and the publisher sends.

    ``subject`` already carries the stream prefix. ``deployment_id`` is ``""`` for events that belong
    to no deployment (``job.destroyed``) or whose deployment is unknown.
    """

    kind: EventKind
    subject: str
    data: bytes
    msg_id: str
    deployment_id: str = ""

    @property
    def is_barrier(self) -> bool:
        return self.kind.is_barrier

    def headers(self) -> dict[str, str]:
        """The NATS headers sent with this event."""
        headers = {HEADER_MSG_ID: self.msg_id, HEADER_KIND: self.kind.value}
        if self.deployment_id:
            headers[HEADER_DEPLOYMENT] = self.deployment_id
        return headers

    def wire_size(self) -> int:
        """Bytes the server counts against ``max_payload``: the payload and the encoded headers
        (``NATS/1.0\\r\\n``, then ``Name: value\\r\\n`` per header, then ``\\r\\n``, as nats-py writes them)."""
        size = _HEADERS_FIXED + len(self.msg_id) + len(self.kind.value)
        if self.deployment_id:
            size += _DEPLOYMENT_HEADER + len(self.deployment_id.encode("utf-8", "surrogatepass"))
        return len(self.data) + size


_HEADERS_FIXED: Final = 10 + 2 + len(HEADER_MSG_ID) + 4 + len(HEADER_KIND) + 4
_DEPLOYMENT_HEADER: Final = len(HEADER_DEPLOYMENT) + 4


def subject_for(kind: EventKind, *, prefix: str = "", deployment_id: str = "") -> str:
    """The full subject of an event of ``kind``."""
    subject = kind.value
    if kind.per_deployment_subject:
        subject = f"{subject}.{validate_deployment_id(deployment_id)}"
    return f"{prefix}.{subject}" if prefix else subject


def make_event(
    kind: EventKind,
    payload: Payload,
    *,
    prefix: str = "",
    deployment_id: str = "",
    msg_id: str | None = None,
) -> Event:
    """Address and encode ``payload`` as an event of ``kind``.

    The deployment id comes from the payload when it has one; ``deployment_id`` names it for
    ``deployment.status.changed`` (whose payload has only the job id) so ordering and the
    ``Cs-Deployment-Id`` header still apply.
    """
    expected = PAYLOAD_TYPES[kind]
    if not isinstance(payload, expected):
        raise ContractError(f"{kind.value} takes a {expected.__name__} payload, not {type(payload).__name__}")
    # A payload that names its deployment decides it (and the subject); the argument is only for the
    # kinds whose payload does not (deployment.status.changed).
    dep = payload.deployment_id if isinstance(payload, DeploymentResult | BuildLog | BuildLogEnd) else deployment_id
    if dep or kind.per_deployment_subject:
        validate_deployment_id(dep)
    try:
        data = _ENCODER.encode(payload)
    except UnicodeEncodeError:
        raise ContractError(f"invalid {kind.value} payload: a text field is not valid UTF-8") from None
    # A Struct built in code is not checked against its bounds (only decoding checks them): decode
    # the bytes once, so every producer passes the same validation as `cs events publish --data`.
    decode_payload(kind, data)
    return Event(
        kind=kind,
        subject=subject_for(kind, prefix=prefix, deployment_id=dep),
        data=data,
        msg_id=msg_id or new_msg_id(),
        deployment_id=dep,
    )


def encode_payload(payload: Payload) -> bytes:
    """The JSON bytes of ``payload`` exactly as they go on the wire."""
    return _ENCODER.encode(payload)


def unprefixed(subject: str, prefix: str) -> str:
    """``subject`` without the stream prefix (``subject`` unchanged when it has none)."""
    if prefix and subject.startswith(prefix + "."):
        return subject[len(prefix) + 1 :]
    return subject


def kind_of_subject(subject: str, prefix: str = "") -> EventKind | None:
    """The event kind a (prefixed) subject carries, or None when it is not a contract subject."""
    bare = unprefixed(subject, prefix)
    if bare.startswith("build.log.end."):
        return EventKind.BUILD_LOG_END
    if bare.startswith("build.log."):
        return EventKind.BUILD_LOG
    try:
        return EventKind(bare)
    except ValueError:
        return None


def stream_subjects(prefix: str) -> list[str]:
    """The subjects a stream must cover to hold every contract event."""
    if prefix:
        return [f"{prefix}.>"]
    return ["deployment.>", "job.destroyed", "build.log.>"]


def sample_subjects(prefix: str) -> list[str]:
    """One concrete subject per kind (deployment id ``x``), for checking that a stream covers them."""
    return [subject_for(k, prefix=prefix, deployment_id="x") for k in EventKind]

"""Dispatch params: task names, decoding (base64 / JSON), validation and the failure identity.

Owns the entry point ``decode_params``: ``NOMAD_META_TASK`` + ``NOMAD_META_PARAMS`` (standard base64 of a
JSON object, or plain JSON for ``cs dispatch --params-file``) -> one typed model per task
(``params_models``), decoded leniently (``params_lenient``: the backend sends numbers as strings and
strings as numbers) and validated.

Every problem is a ``ParamsError`` (a ``UsageError``, exit 2) with a one-line message naming the field and
never a value from the document. The error carries a ``PartialIdentity``: what could still be read of the
deployment identity, so the caller can publish ``deployment.failed`` for a document that failed
validation.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar, overload

import msgspec

from cloudstation.dispatch.params_lenient import FieldError, convert, lenient_int, lenient_str
from cloudstation.dispatch.params_models import (
    DeployImageParams,
    DeployParamsBase,
    DeployRepositoryParams,
    DestroyJobPackParams,
)
from cloudstation.errors import UsageError

__all__ = [
    "DESTROY_REASONS",
    "DispatchParams",
    "ParamsError",
    "PartialIdentity",
    "Task",
    "decode_params",
    "extract_identity",
    "parse_task",
]


class Task(StrEnum):
    """The four dispatch tasks (``NOMAD_META_TASK``)."""

    DEPLOY_REPOSITORY = "deploy-repository"
    REDEPLOY_REPOSITORY = "redeploy-repository"  # same as deploy-repository
    DEPLOY_IMAGE = "deploy-image"
    DESTROY_JOB_PACK = "destroy-job-pack"


DESTROY_REASONS: tuple[str, ...] = (
    "delete",
    "upgrade_volume",
    "migrate_volume",
    "suspend_account",
    "pause_service",
)

DispatchParams = DeployRepositoryParams | DeployImageParams | DestroyJobPackParams

_P = TypeVar("_P", bound=DeployParamsBase)

_TASK_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
_BYTE_POSITION = re.compile(r"\(byte (\d+)\)")


@dataclass(frozen=True, slots=True)
class PartialIdentity:
    """The deployment identity read leniently from a params document, field by field.

    A field that is absent or unreadable is ``""`` (``None`` for ``deployment_job_id``).
    ``deployment_type`` is the ``type`` of ``deployment.succeeded`` / ``deployment.failed``: ``git_repo``
    for the repository tasks, ``image`` for ``deploy-image``, ``None`` otherwise.
    """

    deployment_job_id: int | None = None
    deployment_id: str = ""
    service_id: str = ""
    team_id: str = ""
    user_id: str = ""
    owner_id: str = ""
    deployment_type: Literal["git_repo", "image"] | None = None

    @property
    def can_report_failure(self) -> bool:
        """True when enough is known to publish ``deployment.failed`` (job id, deployment, service)."""
        return (
            self.deployment_type is not None
            and self.deployment_job_id is not None
            and bool(self.deployment_id.strip())
            and bool(self.service_id.strip())
        )


class ParamsError(UsageError):
    """Invalid dispatch input (task, encoding, JSON, shape or validation). Exit code 2.

    ``field`` is the JSON path of the offending field (``None`` when the document as a whole is wrong);
    ``identity`` is what could be read of the deployment identity despite the error.
    """

    def __init__(self, message: str, *, field: str | None = None, identity: PartialIdentity | None = None):
        super().__init__(message)
        self.field = field
        self.identity = identity if identity is not None else PartialIdentity()


def parse_task(task: str) -> Task:
    """``task`` as a ``Task``; raises ``ParamsError`` for an empty or unknown name."""
    try:
        return Task(task)
    except ValueError:
        pass
    expected = ", ".join(t.value for t in Task)
    if not task:
        raise ParamsError(f"dispatch: no task given (expected one of {expected})")
    if _TASK_NAME.fullmatch(task):
        raise ParamsError(f'dispatch: unknown task "{task}" (expected one of {expected})')
    raise ParamsError(f"dispatch: unknown task (expected one of {expected})")


@overload
def decode_params(
    task: Literal["deploy-repository", "redeploy-repository", Task.DEPLOY_REPOSITORY, Task.REDEPLOY_REPOSITORY],
    raw: bytes | str,
    *,
    base64_encoded: bool,
    env: Mapping[str, str] | None = None,
) -> DeployRepositoryParams: ...
@overload
def decode_params(
    task: Literal["deploy-image", Task.DEPLOY_IMAGE],
    raw: bytes | str,
    *,
    base64_encoded: bool,
    env: Mapping[str, str] | None = None,
) -> DeployImageParams: ...
@overload
def decode_params(
    task: Literal["destroy-job-pack", Task.DESTROY_JOB_PACK],
    raw: bytes | str,
    *,
    base64_encoded: bool,
    env: Mapping[str, str] | None = None,
) -> DestroyJobPackParams: ...
@overload
def decode_params(
    task: str,
    raw: bytes | str,
    *,
    base64_encoded: bool,
    env: Mapping[str, str] | None = None,
) -> DispatchParams: ...
def decode_params(
    task: str,
    raw: bytes | str,
    *,
    base64_encoded: bool,
    env: Mapping[str, str] | None = None,
) -> DispatchParams:
    """Decode and validate the params document ``raw`` of ``task``.

    ``raw`` is standard base64 of a JSON object when ``base64_encoded`` (``NOMAD_META_PARAMS``), else the
    JSON itself. ``env`` (default ``os.environ``) supplies ``BACKEND_URL`` / ``ACCESS_TOKEN`` when the
    document has no ``backendUrl`` / ``accessToken``. Raises ``ParamsError``.
    """
    kind = parse_task(task)
    try:
        document = _load(raw, base64_encoded=base64_encoded)
    except ParamsError as exc:
        exc.identity = PartialIdentity(deployment_type=_deployment_type(kind))
        raise
    identity = _identity_of(kind, document)
    try:
        if not isinstance(document, dict):
            raise ParamsError("params: expected a JSON object")
        params = _convert(kind, document)
        if isinstance(params, DeployParamsBase):
            params = _with_env_fallback(params, os.environ if env is None else env)
        _validate(params)
    except ParamsError as exc:
        exc.identity = identity
        raise
    return params


def extract_identity(task: str, raw: bytes | str, *, base64_encoded: bool) -> PartialIdentity:
    """The deployment identity readable from ``raw``, however invalid the rest; never raises."""
    try:
        kind: Task | None = parse_task(task)
    except ParamsError:
        kind = None
    try:
        document = _load(raw, base64_encoded=base64_encoded)
    except ParamsError:
        return PartialIdentity(deployment_type=_deployment_type(kind))
    return _identity_of(kind, document)


# ------------------------------------------------------------------------------------------- decoding


def _load(raw: bytes | str, *, base64_encoded: bool) -> object:
    data: bytes
    if base64_encoded:
        text = raw.strip() if isinstance(raw, str) else raw.strip().decode("ascii", errors="replace")
        if not text:
            raise ParamsError("params: empty document")
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError:
            raise ParamsError("params: not valid standard base64") from None
    else:
        data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
    if not data.strip():
        raise ParamsError("params: empty document")
    # Checked here, not left to msgspec: its versions disagree on how they report invalid UTF-8
    # (0.22 raised UnicodeDecodeError, 0.23 a DecodeError), and the user must read the same words.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParamsError("params: not valid JSON (not UTF-8)") from None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ParamsError(f"params: not valid JSON{_json_where(str(exc))}") from None
    except RecursionError:
        raise ParamsError("params: JSON nested too deeply") from None


def _json_where(message: str) -> str:
    match = _BYTE_POSITION.search(message)
    if match:
        return f" (at byte {match.group(1)})"
    if "truncated" in message:
        return " (truncated)"
    return ""


def _convert(kind: Task, document: dict[str, object]) -> DispatchParams:
    model: type[DispatchParams]
    if kind is Task.DEPLOY_IMAGE:
        model = DeployImageParams
    elif kind is Task.DESTROY_JOB_PACK:
        model = DestroyJobPackParams
    else:
        model = DeployRepositoryParams
    try:
        params = convert(document, model)
    except FieldError as exc:
        raise ParamsError(f'params: field "{exc.path}": {exc.expected}', field=exc.path) from None
    if isinstance(params, DeployRepositoryParams) and not params.provider:
        params = msgspec.structs.replace(params, provider="github")
    return params


def _with_env_fallback(params: _P, env: Mapping[str, str]) -> _P:
    changes: dict[str, str] = {}
    if not params.backend_url:
        changes["backend_url"] = env.get("BACKEND_URL", "")
    if not params.access_token:
        changes["access_token"] = env.get("ACCESS_TOKEN", "")
    return msgspec.structs.replace(params, **changes) if changes else params


# ----------------------------------------------------------------------------------------- validation


def _required(value: str, field: str, detail: str = "") -> None:
    if not value.strip():
        raise ParamsError(f'params: field "{field}" is required{detail}', field=field)


def _validate(params: DispatchParams) -> None:
    if isinstance(params, DeployRepositoryParams):
        _required(params.job_id, "jobId")
        if params.source_type == "local_upload":
            _required(params.source_url, "sourceUrl", ' when sourceType is "local_upload"')
        else:
            _required(params.repository, "repository")
            _required(params.branch, "branch")
        _required(params.deployment_id, "deploymentId")
        _required(params.service_id, "serviceId")
    elif isinstance(params, DeployImageParams):
        _required(params.job_id, "jobId")
        _required(params.image_name, "imageName")
        _required(params.deployment_id, "deploymentId")
        _required(params.service_id, "serviceId")
    else:
        if not params.jobs:
            raise ParamsError('params: field "jobs": at least one job is required', field="jobs")
        # Any non-empty reason: the backend may add reasons before cs knows them.
        _required(params.reason, "reason")


# ------------------------------------------------------------------------------------------- identity


def _deployment_type(kind: Task | None) -> Literal["git_repo", "image"] | None:
    if kind in (Task.DEPLOY_REPOSITORY, Task.REDEPLOY_REPOSITORY):
        return "git_repo"
    if kind is Task.DEPLOY_IMAGE:
        return "image"
    return None


def _identity_of(kind: Task | None, document: object) -> PartialIdentity:
    deployment_type = _deployment_type(kind)
    if not isinstance(document, dict):
        return PartialIdentity(deployment_type=deployment_type)

    def text(key: str) -> str:
        try:
            value = document.get(key)
            return "" if value is None else lenient_str(value)
        except ValueError:
            return ""

    job_id: int | None
    raw_job_id = document.get("deploymentJobId")
    try:
        job_id = None if raw_job_id is None else lenient_int(raw_job_id)
    except ValueError:
        job_id = None
    return PartialIdentity(
        deployment_job_id=job_id,
        deployment_id=text("deploymentId"),
        service_id=text("serviceId"),
        team_id=text("teamId"),
        user_id=text("userId"),
        owner_id=text("ownerId"),
        deployment_type=deployment_type,
    )

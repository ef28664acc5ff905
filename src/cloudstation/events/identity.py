"""Who a deployment is, and the payloads that say it.

One :class:`DeploymentRef` per deployment: its ids as the contract names them, checked once when it
is made (a deployment id that cannot be a subject token, an id over the contract's bound or a
``jobId`` outside int64 is a :class:`~cloudstation.errors.ContractError`, exit 2). Every event of the
deployment is built by its methods: ``deployment.status.changed``, ``deployment.succeeded`` /
``deployment.failed``, each ``build.log`` line and ``build.log.end``; no producer copies the ids
field by field. Local runs, ``cs stream`` and ``cs dispatch`` all make one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudstation.errors import ContractError
from cloudstation.events.contract import (
    JOB_ID_MAX,
    JOB_ID_MIN,
    BuildLog,
    BuildLogEnd,
    DeploymentResult,
    DeploymentStatus,
    Event,
    EventKind,
    LogEndStatus,
    LogOutput,
    StatusChanged,
    make_event,
    validate_deployment_id,
    validate_field,
)
from cloudstation.vocabulary import DeploymentType


@dataclass(frozen=True)
class DeploymentRef:
    """Who a deployment is, as every event of it says (``""`` for an id the platform did not give)."""

    deployment_id: str
    job_id: int
    service_id: str = ""
    team_id: str = ""
    user_id: str = ""
    owner_id: str = ""
    type: DeploymentType = "git_repo"

    def __post_init__(self) -> None:
        validate_deployment_id(self.deployment_id)
        validate_field(self.service_id, "serviceId")
        validate_field(self.owner_id, "ownerId")
        if not JOB_ID_MIN <= self.job_id <= JOB_ID_MAX:
            raise ContractError(f"jobId {self.job_id} is out of range (a signed 64-bit integer)")

    def status_changed(self, status: DeploymentStatus, *, prefix: str = "") -> Event:
        """``deployment.status.changed``: its payload names only the job; the event names the deployment."""
        payload = StatusChanged(job_id=self.job_id, status=status)
        return make_event(EventKind.STATUS_CHANGED, payload, prefix=prefix, deployment_id=self.deployment_id)

    def outcome(self, ok: bool, *, prefix: str = "") -> Event:
        """``deployment.succeeded`` (``ok``) or ``deployment.failed``: every id of the deployment."""
        payload = DeploymentResult(
            job_id=self.job_id,
            type=self.type,
            deployment_id=self.deployment_id,
            service_id=self.service_id,
            team_id=self.team_id,
            user_id=self.user_id,
            owner_id=self.owner_id,
        )
        return make_event(EventKind.SUCCEEDED if ok else EventKind.FAILED, payload, prefix=prefix)

    def log_line(self, output: LogOutput, content: str, timestamp: int, sequence: int, phase: str) -> BuildLog:
        """The payload of one ``build.log`` line (the log encodes and addresses it itself, once per line)."""
        return BuildLog(
            deployment_id=self.deployment_id,
            job_id=self.job_id,
            service_id=self.service_id,
            owner_id=self.owner_id,
            log_output=output,
            content=content,
            timestamp=timestamp,
            sequence=sequence,
            phase=phase,
        )

    def log_end(self, status: LogEndStatus, *, prefix: str = "") -> Event:
        """``build.log.end``: the deployment's log is complete."""
        payload = BuildLogEnd(deployment_id=self.deployment_id, job_id=self.job_id, status=status)
        return make_event(EventKind.BUILD_LOG_END, payload, prefix=prefix)

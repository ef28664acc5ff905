"""A deployment's lifecycle events, in the contract's order.

``deployment.status.changed IN_PROGRESS`` first; then the log lines (the log stream's business);
then exactly one of ``deployment.succeeded`` / ``deployment.failed``; then ``build.log.end``. Every
one of these is a barrier in the publisher, so the order in the stream is the order here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cloudstation.events.contract import DeploymentResult, EventKind, StatusChanged, make_event
from cloudstation.events.logstream import Echo, EventSink, LogIdentity, LogStream
from cloudstation.events.session import EventSession
from cloudstation.redaction import Redactor

DeploymentType = Literal["git_repo", "image"]


@dataclass(frozen=True)
class DeploymentIdentity:
    """Who a deployment is, as every event of it says."""

    deployment_id: str
    job_id: int
    service_id: str = ""
    team_id: str = ""
    user_id: str = ""
    owner_id: str = ""
    type: DeploymentType = "git_repo"

    @property
    def log_identity(self) -> LogIdentity:
        return LogIdentity(self.deployment_id, self.job_id, self.service_id, self.owner_id)


class DeploymentReporter:
    """Publishes one deployment's start and outcome; a no-op without a sink (local runs)."""

    def __init__(
        self, sink: EventSink | None, identity: DeploymentIdentity, log: LogStream, *, prefix: str = ""
    ) -> None:
        self.sink = sink
        self.identity = identity
        self.log = log
        self.prefix = prefix
        self.started = False
        self.finished = False

    def start(self) -> None:
        """``deployment.status.changed IN_PROGRESS``: the first event of the deployment."""
        self.started = True
        if self.sink is not None:
            ident = self.identity
            payload = StatusChanged(job_id=ident.job_id, status="IN_PROGRESS")
            event = make_event(EventKind.STATUS_CHANGED, payload, prefix=self.prefix, deployment_id=ident.deployment_id)
            self.sink.submit([event])

    def finish(self, ok: bool) -> None:
        """``deployment.succeeded`` or ``deployment.failed``, then ``build.log.end``. Once only."""
        if self.finished:
            return
        self.finished = True
        self.log.spill()  # every line so far goes before the outcome
        if self.sink is not None:
            ident = self.identity
            payload = DeploymentResult(
                job_id=ident.job_id,
                type=ident.type,
                deployment_id=ident.deployment_id,
                service_id=ident.service_id,
                team_id=ident.team_id,
                user_id=ident.user_id,
                owner_id=ident.owner_id,
            )
            kind = EventKind.SUCCEEDED if ok else EventKind.FAILED
            self.sink.submit([make_event(kind, payload, prefix=self.prefix)])
        if not self.log.ended:
            self.log.end("success" if ok else "failed")


def open_deployment(
    session: EventSession,
    identity: DeploymentIdentity,
    *,
    redactor: Redactor,
    echo: Echo | None = None,
    phase: str = "init",
) -> tuple[LogStream, DeploymentReporter]:
    """The log stream and the reporter of one deployment, publishing through ``session``."""
    log = LogStream(
        session.publisher, identity.log_identity, prefix=session.prefix, redactor=redactor, echo=echo, phase=phase
    )
    return log, DeploymentReporter(session.publisher, identity, log, prefix=session.prefix)

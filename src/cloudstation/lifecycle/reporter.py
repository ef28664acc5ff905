"""A deployment's lifecycle events, in the contract's order.

``deployment.status.changed IN_PROGRESS`` first; then the log lines (the log stream's business);
then exactly one of ``deployment.succeeded`` / ``deployment.failed``; then ``build.log.end``. Every
one of these is a barrier in the publisher, so the order in the stream is the order here. The events
themselves are made by the deployment's :class:`~cloudstation.events.identity.DeploymentRef`.
"""

from __future__ import annotations

from cloudstation.events.buildlog import BuildLog, Echo, EventSink
from cloudstation.events.identity import DeploymentRef
from cloudstation.events.session import EventSession
from cloudstation.redaction import Redactor


class DeploymentReporter:
    """Publishes one deployment's start and outcome; a no-op without a sink (local runs)."""

    def __init__(self, sink: EventSink | None, identity: DeploymentRef, log: BuildLog, *, prefix: str = "") -> None:
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
            self.sink.submit([self.identity.status_changed("IN_PROGRESS", prefix=self.prefix)])

    def finish(self, ok: bool) -> None:
        """``deployment.succeeded`` or ``deployment.failed``, then ``build.log.end``. Once only."""
        if self.finished:
            return
        self.finished = True
        self.log.spill()  # every line so far goes before the outcome
        if self.sink is not None:
            self.sink.submit([self.identity.outcome(ok, prefix=self.prefix)])
        if not self.log.ended:
            self.log.end("success" if ok else "failed")


def open_deployment(
    session: EventSession,
    identity: DeploymentRef,
    *,
    redactor: Redactor,
    echo: Echo | None = None,
    phase: str = "init",
) -> tuple[BuildLog, DeploymentReporter]:
    """The log stream and the reporter of one deployment, publishing through ``session``."""
    log = BuildLog(session.publisher, identity, prefix=session.prefix, redactor=redactor, echo=echo, phase=phase)
    return log, DeploymentReporter(session.publisher, identity, log, prefix=session.prefix)

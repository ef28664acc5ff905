"""One ``cs build|deploy|up`` run over one or more apps: identity, build log, events, signals.

Each app is its own deployment (its own deployment id and log sequence). SIGTERM or SIGINT stops
the running phase (the plugin's child within 2 s, even if a second signal comes), publishes
``deployment.failed`` and ``build.log.end failed``, and returns, so the process can exit within 3 s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from cloudstation.config.model import App
from cloudstation.events.buildlog import Echo
from cloudstation.events.identity import DeploymentRef
from cloudstation.events.session import EventSession
from cloudstation.lifecycle.engine import Lifecycle, RunResult
from cloudstation.lifecycle.reporter import open_deployment
from cloudstation.processes.signals import StopSignals
from cloudstation.redaction import Redactor
from cloudstation.vocabulary import Step


def app_identity(
    app: App,
    several: bool,
    *,
    deployment_id: str | None = None,
    job_id: int | None = None,
    service_id: str | None = None,
    owner_id: str = "",
) -> DeploymentRef:
    """The identity of ``app``'s deployment from a run's flags; an id not given is generated.

    With several apps, a given deployment id is suffixed with the app's name (one deployment each).
    """
    dep = deployment_id or f"local-{os.urandom(4).hex()}"
    if several and deployment_id:
        dep = f"{dep}-{app.name}"
    job = job_id if job_id is not None else int.from_bytes(os.urandom(3), "big")
    return DeploymentRef(dep, job, service_id=service_id or app.name, owner_id=owner_id)


async def run_apps(
    lifecycle: Lifecycle,
    apps: Sequence[App],
    steps: Sequence[Step],
    *,
    session: EventSession,
    identity: Callable[[App, bool], DeploymentRef],
    redactor: Redactor,
    echo: Echo | None,
) -> tuple[list[RunResult], int | None]:
    """Run ``steps`` for each app in turn, stopping at the first failure.

    ``identity(app, several)`` names each app's deployment (:func:`app_identity` with the run's flags).
    Returns the results and the signal number that stopped the run (None when none did).
    """
    for app in apps:
        lifecycle.plugins(app)  # every config error before anything runs or is published
    results: list[RunResult] = []
    with StopSignals() as stop:
        for app in apps:
            ident = identity(app, len(apps) > 1)
            log, reporter = open_deployment(session, ident, redactor=redactor, echo=echo)
            reporter.start()
            result = RunResult(app=app.name, deployment_id=ident.deployment_id)
            results.append(result)
            try:
                with stop.caught():
                    await lifecycle.run(app, steps, log, result)
                if stop.stopped:
                    result.error = result.error or f"stopped by signal {stop.signum}"
            finally:
                reporter.finish(result.ok)
            if not result.ok:
                break
    return results, stop.signum

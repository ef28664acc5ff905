"""Sample events and payloads the event tests journal, publish or send through the real CLI."""

from __future__ import annotations

import json

from cloudstation.events import contract as c
from tests.conftest import CsResult, CsRunner

SUCCEEDED = json.dumps(
    {
        "jobId": 7,
        "type": "git_repo",
        "deploymentId": "dep-7",
        "serviceId": "svc",
        "teamId": "team",
        "userId": "u1",
        "ownerId": "o1",
    }
)
DESTROYED = json.dumps({"id": "svc", "reason": "delete"})


def publish_succeeded(cs: CsRunner, env: dict[str, str] | None, *flags: str) -> CsResult:
    """``cs events publish deployment.succeeded --data SUCCEEDED [flags]`` with ``env``."""
    return cs("events", "publish", "deployment.succeeded", "--data", SUCCEEDED, *flags, env=env)


def log_lines(dep: str, n: int, start: int = 1) -> list[c.Event]:
    """``n`` build.log events of deployment ``dep``, sequences ``start``.. (one line each)."""
    return [
        c.make_event(
            c.EventKind.BUILD_LOG,
            c.BuildLog(
                deployment_id=dep,
                job_id=1,
                service_id="svc",
                owner_id="o",
                log_output="stdout",
                content=f"line {i}\n",
                timestamp=1_700_000_000_000 + i,
                sequence=i,
                phase="build",
            ),
        )
        for i in range(start, start + n)
    ]

"""Sample payloads the event tests publish through the real CLI."""

from __future__ import annotations

import json

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

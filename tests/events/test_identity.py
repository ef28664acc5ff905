"""The one deployment identity: checked once when made, and the maker of every payload of its deployment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloudstation.errors import ContractError
from cloudstation.events.contract import EventKind, decode_payload
from cloudstation.events.identity import DeploymentRef

REF = DeploymentRef("dep-1", 42, service_id="svc", team_id="team", user_id="7", owner_id="own", type="image")


def test_status_changed_names_the_job_in_the_payload_and_the_deployment_in_the_event() -> None:
    event = REF.status_changed("IN_PROGRESS", prefix="p")
    assert (event.kind, event.subject, event.deployment_id) == (
        EventKind.STATUS_CHANGED,
        "p.deployment.status.changed",
        "dep-1",
    )
    assert json.loads(event.data) == {"jobId": 42, "status": "IN_PROGRESS"}


@pytest.mark.parametrize(("ok", "kind"), [(True, EventKind.SUCCEEDED), (False, EventKind.FAILED)])
def test_outcome_carries_every_id(ok: bool, kind: EventKind) -> None:
    event = REF.outcome(ok)
    assert (event.kind, event.subject, event.deployment_id) == (kind, kind.value, "dep-1")
    assert json.loads(event.data) == {
        "jobId": 42,
        "type": "image",
        "deploymentId": "dep-1",
        "serviceId": "svc",
        "teamId": "team",
        "userId": "7",
        "ownerId": "own",
    }


def test_log_line_and_log_end() -> None:
    line = REF.log_line("stderr", "boom\n", timestamp=1, sequence=3, phase="build")
    assert (line.deployment_id, line.job_id, line.service_id, line.owner_id) == ("dep-1", 42, "svc", "own")
    assert (line.log_output, line.content, line.timestamp, line.sequence, line.phase) == (
        "stderr",
        "boom\n",
        1,
        3,
        "build",
    )
    end = REF.log_end("failed", prefix="p")
    assert (end.kind, end.subject) == (EventKind.BUILD_LOG_END, "p.build.log.end.dep-1")
    assert decode_payload(EventKind.BUILD_LOG_END, end.data) == decode_payload(
        EventKind.BUILD_LOG_END, b'{"deploymentId":"dep-1","jobId":42,"status":"failed"}'
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"deployment_id": "a.b", "job_id": 1}, "cannot be used in a subject"),
        ({"deployment_id": "", "job_id": 1}, "deploymentId is empty"),
        ({"deployment_id": "d", "job_id": 2**63}, "out of range"),
        ({"deployment_id": "d", "job_id": 1, "service_id": "s" * 257}, "serviceId is 257 characters"),
        ({"deployment_id": "d", "job_id": 1, "owner_id": "\ud800"}, "ownerId is not valid UTF-8"),
    ],
)
def test_an_identity_the_contract_refuses_is_refused_when_made(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        DeploymentRef(**fields)

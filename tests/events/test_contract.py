"""The wire contract: each payload encodes to exactly the fields and JSON types of ORIGINAL.md §3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloudstation.errors import ContractError
from cloudstation.events import contract as c

GOLDEN = Path(__file__).parent / "golden"

# field -> JSON type, as ORIGINAL.md §3 lists them (written by hand: the test fails if the code drifts)
RESULT_FIELDS = {
    "jobId": int,
    "type": str,
    "deploymentId": str,
    "serviceId": str,
    "teamId": str,
    "userId": str,
    "ownerId": str,
}
WIRE_TYPES: dict[c.EventKind, dict[str, type]] = {
    c.EventKind.STATUS_CHANGED: {"jobId": int, "status": str},
    c.EventKind.SUCCEEDED: RESULT_FIELDS,
    c.EventKind.FAILED: RESULT_FIELDS,
    c.EventKind.JOB_DESTROYED: {"id": str, "reason": str},
    c.EventKind.BUILD_LOG: {
        "deploymentId": str,
        "jobId": int,
        "serviceId": str,
        "ownerId": str,
        "logOutput": str,
        "content": str,
        "timestamp": int,
        "sequence": int,
        "phase": str,
    },
    c.EventKind.BUILD_LOG_END: {"deploymentId": str, "jobId": int, "status": str},
}

SAMPLES: dict[c.EventKind, c.Payload] = {
    c.EventKind.STATUS_CHANGED: c.StatusChanged(job_id=42, status="IN_PROGRESS"),
    c.EventKind.SUCCEEDED: c.DeploymentResult(
        job_id=42, type="git_repo", deployment_id="dep-1", service_id="svc-1", team_id="", user_id="7", owner_id="9"
    ),
    c.EventKind.FAILED: c.DeploymentResult(
        job_id=42, type="image", deployment_id="dep-1", service_id="svc-1", team_id="t", user_id="", owner_id=""
    ),
    c.EventKind.JOB_DESTROYED: c.JobDestroyed(id="svc-1", reason="pause_service"),
    c.EventKind.BUILD_LOG: c.BuildLog(
        deployment_id="dep-1",
        job_id=42,
        service_id="svc-1",
        owner_id="9",
        log_output="stderr",
        content="Step 1/3 : FROM python\n",
        timestamp=1764288000123,
        sequence=1,
        phase="build",
    ),
    c.EventKind.BUILD_LOG_END: c.BuildLogEnd(deployment_id="dep-1", job_id=42, status="success"),
}


@pytest.mark.parametrize("kind", list(c.EventKind), ids=lambda k: k.value)
def test_payload_matches_golden_file_and_wire_types(kind: c.EventKind) -> None:
    encoded = c.encode_payload(SAMPLES[kind])
    golden = (GOLDEN / f"{kind.value}.json").read_bytes().strip()
    assert encoded == golden
    doc = json.loads(encoded)
    assert list(doc) == list(WIRE_TYPES[kind])
    for name, typ in WIRE_TYPES[kind].items():
        assert type(doc[name]) is typ, name


@pytest.mark.parametrize("kind", list(c.EventKind), ids=lambda k: k.value)
def test_decoding_the_golden_file_round_trips(kind: c.EventKind) -> None:
    golden = (GOLDEN / f"{kind.value}.json").read_bytes()
    assert c.decode_payload(kind, golden) == SAMPLES[kind]


def test_subjects_with_prefix_and_deployment_id() -> None:
    ev = c.make_event(c.EventKind.SUCCEEDED, SAMPLES[c.EventKind.SUCCEEDED], prefix="cs")
    assert ev.subject == "cs.deployment.succeeded"
    assert ev.deployment_id == "dep-1"
    log = c.make_event(c.EventKind.BUILD_LOG, SAMPLES[c.EventKind.BUILD_LOG], prefix="cs")
    assert log.subject == "cs.build.log.dep-1"
    end = c.make_event(c.EventKind.BUILD_LOG_END, SAMPLES[c.EventKind.BUILD_LOG_END])
    assert end.subject == "build.log.end.dep-1"
    status = c.make_event(c.EventKind.STATUS_CHANGED, SAMPLES[c.EventKind.STATUS_CHANGED], deployment_id="dep-1")
    assert status.subject == "deployment.status.changed"
    assert status.headers()[c.HEADER_DEPLOYMENT] == "dep-1"


def test_every_event_carries_a_unique_msg_id_and_kind_header() -> None:
    events = [c.make_event(k, SAMPLES[k]) for k in c.EventKind for _ in range(50)]
    ids = {e.msg_id for e in events}
    assert len(ids) == len(events)
    for ev in events:
        h = ev.headers()
        assert h[c.HEADER_MSG_ID] == ev.msg_id
        assert h[c.HEADER_KIND] == ev.kind.value
    destroyed = c.make_event(c.EventKind.JOB_DESTROYED, SAMPLES[c.EventKind.JOB_DESTROYED])
    assert c.HEADER_DEPLOYMENT not in destroyed.headers()


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "a>", "a b", "tab\there", "new\nline"])
def test_deployment_id_unfit_for_a_subject_is_rejected(bad: str) -> None:
    payload = c.BuildLogEnd(deployment_id=bad, job_id=1, status="failed")
    with pytest.raises(ContractError, match="deploymentId"):
        c.make_event(c.EventKind.BUILD_LOG_END, payload)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (
            c.EventKind.STATUS_CHANGED,
            {"jobId": "42", "status": "IN_PROGRESS"},
            "Expected `int`, got `str` - at `$.jobId`",
        ),
        (c.EventKind.STATUS_CHANGED, {"jobId": 42}, "missing required field `status`"),
        (c.EventKind.STATUS_CHANGED, {"jobId": 42, "status": "DONE"}, "Invalid enum value 'DONE' - at `$.status`"),
        (c.EventKind.JOB_DESTROYED, {"id": "s", "reason": "delete", "x": 1}, "unknown field `x`"),
        (c.EventKind.JOB_DESTROYED, {"id": "s", "reason": ""}, "at `$.reason`"),
        (c.EventKind.JOB_DESTROYED, {"id": "s", "reason": "x" * 65}, "at `$.reason`"),
        (c.EventKind.BUILD_LOG_END, {"deploymentId": "d", "jobId": True, "status": "success"}, "at `$.jobId`"),
        (c.EventKind.SUCCEEDED, {"jobId": 1}, "missing required field `type`"),
    ],
)
def test_invalid_payloads_name_the_field(kind: c.EventKind, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError) as err:
        c.decode_payload(kind, json.dumps(data))
    assert message in str(err.value)
    assert str(err.value).startswith(f"invalid {kind.value} payload: ")


def test_unknown_kind_lists_known_ones() -> None:
    with pytest.raises(ContractError, match=r"unknown event kind 'deployment\.started'.*deployment\.succeeded"):
        c.parse_kind("deployment.started")


def test_barriers_are_every_kind_but_log_lines() -> None:
    assert [k for k in c.EventKind if not k.is_barrier] == [c.EventKind.BUILD_LOG]


def test_kind_of_subject() -> None:
    assert c.kind_of_subject("p.build.log.end.d1", "p") is c.EventKind.BUILD_LOG_END
    assert c.kind_of_subject("p.build.log.d1", "p") is c.EventKind.BUILD_LOG
    assert c.kind_of_subject("job.destroyed") is c.EventKind.JOB_DESTROYED
    assert c.kind_of_subject("other.thing") is None


@pytest.mark.parametrize("data", [b'{"id": "s", "reason": "\xff"}', '{"id": "s", "reason": "\ud800"}'])
def test_invalid_utf8_reads_the_same_whatever_msgspec_says(data: bytes | str) -> None:
    """msgspec 0.22 and 0.23 report invalid UTF-8 differently; a user reads one message either way."""
    with pytest.raises(ContractError) as payload_err:
        c.decode_payload(c.EventKind.JOB_DESTROYED, data)
    assert str(payload_err.value) == "invalid job.destroyed payload: not valid UTF-8"
    with pytest.raises(ContractError) as json_err:
        c.decode_json(data, "batch line 3")
    assert str(json_err.value) == "batch line 3: not valid UTF-8"

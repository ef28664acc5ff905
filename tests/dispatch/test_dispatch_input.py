"""``cs dispatch`` input through the real CLI: exit codes, one-line errors naming the field, no value echoed,
and the failure published when the identity is known."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import GIT_PASS, IDENTITY, NOMAD_TOKEN, b64, setup_stream, stored
from tests.natsserver import NatsServer

REPO: dict[str, Any] = {**IDENTITY, "repository": "acme/web", "branch": "main", "gitPass": GIT_PASS}

# (id, task, NOMAD_META_PARAMS, expected field or message fragment)
CASES: list[tuple[str, str, str, str]] = [
    ("unknown-task", "deploy-everything", b64(REPO), 'unknown task "deploy-everything"'),
    ("no-task", "", b64(REPO), "no task given"),
    ("bad-base64", "deploy-repository", "%%%not-base64" + GIT_PASS, "not valid standard base64"),
    ("bad-json", "deploy-repository", base64.b64encode(b'{"jobId": ').decode(), "not valid JSON"),
    ("not-object", "deploy-image", b64([1, 2]), "expected a JSON object"),
    ("no-jobId", "deploy-repository", b64({**REPO, "jobId": ""}), 'field "jobId" is required'),
    ("no-branch", "deploy-repository", b64({**REPO, "branch": None}), 'field "branch" is required'),
    (
        "upload-no-url",
        "redeploy-repository",
        b64({**REPO, "sourceType": "local_upload"}),
        'field "sourceUrl" is required',
    ),
    ("no-serviceId", "deploy-repository", b64({**REPO, "serviceId": ""}), 'field "serviceId" is required'),
    ("image-no-name", "deploy-image", b64(IDENTITY), 'field "imageName" is required'),
    (
        "bad-number",
        "deploy-image",
        b64({**IDENTITY, "imageName": "n", "cpu": "lots"}),
        'field "cpu": expected a number',
    ),
    ("destroy-no-jobs", "destroy-job-pack", b64({"jobs": [], "reason": "delete"}), 'field "jobs"'),
    (
        "destroy-empty-reason",
        "destroy-job-pack",
        b64({"jobs": [{"jobId": "j", "serviceId": "s", "nomadToken": NOMAD_TOKEN}], "reason": ""}),
        'field "reason" is required',
    ),
    ("dotted-deployment", "deploy-image", b64({**IDENTITY, "imageName": "n", "deploymentId": "a.b"}), "deploymentId"),
]


@pytest.mark.parametrize(("task", "params", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_input_exits_2_with_one_line_naming_the_problem(
    cs: CsRunner, task: str, params: str, expected: str
) -> None:
    res = cs("dispatch", env={"NOMAD_META_TASK": task, "NOMAD_META_PARAMS": params})
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cs: error: "), res.stderr
    assert expected in lines[0]
    for value in (GIT_PASS, NOMAD_TOKEN, "lots", "whim", "acme/web"):
        assert value not in res.stderr + res.stdout
    assert "Traceback" not in res.stderr


def test_lenient_numbers_and_params_file(cs: CsRunner, tmp_path: Path) -> None:
    doc = {
        **IDENTITY,
        "deploymentJobId": 42.0,
        "imageName": "nginx",
        "cpu": "",
        "ram": "512",
        "replicaCount": 2,
        "deploy": "noop",
        "networks": [{"portNumber": "8080", "portType": "http", "public": "true", "domain": "x.example.com"}],
        "unknownField": {"ignored": True},
    }
    path = tmp_path / "params.json"
    path.write_text(json.dumps(doc))
    res = cs("dispatch", "--task", "deploy-image", "--params-file", str(path))
    assert res.returncode == 0, res.stderr
    assert "deployment succeeded" in res.stdout


def test_task_and_params_file_go_together(cs: CsRunner) -> None:
    res = cs("dispatch", "--task", "deploy-image")
    assert res.returncode == 2
    assert "--params-file" in res.stderr


def test_help_explains_the_inputs_and_exit_codes(cs: CsRunner) -> None:
    res = cs("dispatch", "--help")
    assert res.returncode == 0
    for text in ("NOMAD_META_TASK", "NOMAD_META_PARAMS", "--params-file", "CS_JOB_TIMEOUT", "CS_STEP_UPDATE_BOUND"):
        assert text in res.stdout
    assert "Exit codes" in res.stdout


@pytest.mark.parametrize("bound", ["soon", "0", "-1s"])
def test_an_invalid_step_update_bound_is_exit_2_naming_it(cs: CsRunner, bound: str) -> None:
    meta = {"NOMAD_META_TASK": "deploy-image", "NOMAD_META_PARAMS": b64({**IDENTITY, "imageName": "n"})}
    res = cs("dispatch", env={**meta, "CS_STEP_UPDATE_BOUND": bound})
    assert res.returncode == 2
    assert res.stderr.startswith("cs: error: CS_STEP_UPDATE_BOUND"), res.stderr


def test_invalid_params_with_known_identity_publish_the_failure(cs: CsRunner, nats_server: NatsServer) -> None:
    env = setup_stream(cs, nats_server)
    doc = {**REPO, "branch": "", "deploymentJobId": "42"}
    res = cs("dispatch", env={**env, "NOMAD_META_TASK": "deploy-repository", "NOMAD_META_PARAMS": b64(doc)})
    assert res.returncode == 2
    assert 'field "branch" is required' in res.stderr
    msgs = stored(nats_server)
    assert [m.subject for m in msgs] == ["build.log.dep-1", "deployment.failed", "build.log.end.dep-1"]
    assert msgs[0].json["content"] == 'error: params: field "branch" is required\n'
    assert msgs[1].json == {
        "jobId": 42,
        "type": "git_repo",
        "deploymentId": "dep-1",
        "serviceId": "svc-1",
        "teamId": "team-1",
        "userId": "7",
        "ownerId": "owner-1",
    }
    assert msgs[2].json == {"deploymentId": "dep-1", "jobId": 42, "status": "failed"}


def test_invalid_params_without_identity_publish_nothing(cs: CsRunner, nats_server: NatsServer) -> None:
    env = setup_stream(cs, nats_server)
    doc = {**REPO, "deploymentJobId": None, "branch": ""}
    res = cs("dispatch", env={**env, "NOMAD_META_TASK": "deploy-repository", "NOMAD_META_PARAMS": b64(doc)})
    assert res.returncode == 2
    assert stored(nats_server) == []

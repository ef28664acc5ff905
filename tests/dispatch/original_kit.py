"""Helpers of the issue-10 ``cs dispatch`` tests (test_dispatch_original / _vault / _payload): the recording
backend's paths and answers, the step list it saw, a bare repository as params, the vars file, canaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloudstation.plugins.builtin.packs.schema import read_vars_file
from tests.backend.recording_backend import RecordingBackend
from tests.dispatch.dispatch_kit import CANARIES, GIT_PASS, IDENTITY, NKEY_SEED, NOMAD_TOKEN
from tests.fakes.fakebin import FakeBin, Invocation
from tests.sources.sources_testkit import make_bare_repo

RESULT = {"jobId": 42, "deploymentId": "dep-1", "serviceId": "svc-1", "teamId": "team-1", "ownerId": "owner-1"}
STEP = "/api/local/deployment-step/update"
DOMAIN = "/api/local/ask-domain"
SERVICE = "/api/local/service-update/"


def docker_steps(fake_bin: FakeBin) -> list[Invocation]:
    """The fake docker's calls without the engine probe (``docker version``, tested in tests/plugins)."""
    return [c for c in fake_bin.calls("docker") if c.args[:1] != ["version"]]


def pack_vars(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "work" / "state" / "plugins" / "nomad-pack" / "dispatch" / "app" / "vars.hcl"
    return read_vars_file(path)


def no_canary(*texts: str, extra: tuple[str, ...] = ()) -> None:
    for text in texts:
        for canary in (*CANARIES, NKEY_SEED, *extra):
            assert canary not in text, canary


def backend_ok(backend: RecordingBackend, domain: str = "web-abc") -> None:
    backend.on(STEP, (200, {"success": True}))
    backend.on(DOMAIN, (200, {"domain": domain}))
    backend.on(SERVICE, (201, {"message": "updated!"}))


def steps_seen(backend: RecordingBackend) -> list[tuple[str, str, str]]:
    return [(r.body["deployment_type"], r.body["step"], r.body["status"]) for r in backend.requests if r.path == STEP]


def completed(kind: str, *steps: str) -> list[tuple[str, str, str]]:
    return [(kind, step, status) for step in steps for status in ("in_progress", "completed")]


def repo_params(tmp_path: Path, files: dict[str, str], **params: Any) -> tuple[dict[str, Any], dict[str, str]]:
    make_bare_repo(tmp_path / "remote", "acme/web", {"main": files})
    document = {
        **IDENTITY,
        "repository": "acme/web",
        "branch": "main",
        "gitPass": GIT_PASS,
        "imageName": "web",
        "imageTag": "v1",
        "nomadToken": NOMAD_TOKEN,
        **params,
    }
    return document, {"CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}"}

"""Helpers for the ``cs dispatch`` tests: params documents, the Nomad environment, fakes on PATH, stream reads,
the recording backend's paths and answers, the step list it saw, a bare repository as params, canaries."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import nkeys

from cloudstation.plugins.builtin.packs.schema import read_vars_file
from tests.backend.recording_backend import RecordingBackend
from tests.conftest import CsResult, CsRunner
from tests.fakes.fakebin import FakeBin, Invocation
from tests.natsserver import NatsServer
from tests.sources.sources_testkit import make_bare_repo
from tests.streamread import StoredMsg, read_stream

# Canary secrets: none may appear in output, the stream, the outbox or a generated file (but where needed).
GIT_PASS = "CANARY-gitpass-7f3a91"
REGISTRY_PASSWORD = "CANARY-regpass-2b8c44"
NOMAD_TOKEN = "CANARY-nomadtok-9e1d07"
ACCESS_TOKEN = "CANARY-access-5c6f22"
VAULT_VALUE = "CANARY-vaultval-8a4e13"
ROLE_ID = "CANARY-roleid-1d2e3f"
SECRET_ID = "CANARY-secretid-4a5b6c"
# A fresh NKey user seed (the test server has no auth: it only has to be valid and kept secret).
NKEY_SEED: str = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
CANARIES = (GIT_PASS, REGISTRY_PASSWORD, NOMAD_TOKEN, ACCESS_TOKEN, VAULT_VALUE, ROLE_ID, SECRET_ID)

IDENTITY: dict[str, Any] = {
    "jobId": "web-job",
    "deploymentId": "dep-1",
    "serviceId": "svc-1",
    "teamId": "team-1",
    "userId": 7,
    "ownerId": "owner-1",
    "deploymentJobId": "42",
}


def b64(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def tool_path(fake_bin: FakeBin) -> str:
    """The fakes first, then the directory of the real git (and whatever else lives there)."""
    git = shutil.which("git")
    assert git is not None
    return f"{fake_bin.bin_dir}:{Path(git).parent}"


def dispatch(cs: CsRunner, task: str, params: object, env: dict[str, str], *, timeout: float = 60) -> CsResult:
    """``cs dispatch`` as Nomad runs it: NOMAD_META_TASK and NOMAD_META_PARAMS (base64)."""
    return cs("dispatch", env={**env, "NOMAD_META_TASK": task, "NOMAD_META_PARAMS": b64(params)}, timeout=timeout)


def setup_stream(cs: CsRunner, server: NatsServer) -> dict[str, str]:
    env = {"NATS_SERVERS": server.url}
    assert cs("nats", "setup", env=env).returncode == 0
    return env


def stored(server: NatsServer) -> list[StoredMsg]:
    return read_stream(server.url)


def outcome_events(messages: list[StoredMsg]) -> list[tuple[str, Any]]:
    """Every non-log event as (subject, payload), in stream order."""
    return [(m.subject, m.json) for m in messages if not m.subject.startswith("build.log.dep")]


def log_text(messages: list[StoredMsg]) -> str:
    return "".join(m.json["content"] for m in messages if m.subject.startswith("build.log.") and "content" in m.json)


def all_text_under(root: Path) -> str:
    """The text of every regular file under ``root`` (binary files decoded leniently)."""
    out: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


# Small backend retry waits for tests (the defaults, 1-5 s, are the original's and stay the defaults).
FAST_BACKEND = {"CS_BACKEND_RETRY_WAIT_MIN": "0.01", "CS_BACKEND_RETRY_WAIT_MAX": "0.02"}


def task_env(cs: CsRunner, server: NatsServer, fake_bin: FakeBin, tmp_path: Path) -> dict[str, str]:
    """The environment of a dispatched task: the stream set up, fakes for every tool, private dirs."""
    for tool in ("docker", "railpack", "nixpacks", "nomad-pack", "nomad"):
        if tool not in fake_bin.tools:
            fake_bin.add(tool)
    env = setup_stream(cs, server)
    return {
        **env,
        **FAST_BACKEND,
        "NATS_CLIENT_PRIVATE_KEY": NKEY_SEED,
        "PATH": tool_path(fake_bin),
        "CS_WORK_DIR": str(tmp_path / "work"),
        "NOMAD_ALLOC_DIR": str(tmp_path / "alloc"),
    }


# -- the backend, steps, params and vars of the compatibility tests (test_dispatch_compat / _vault / _payload)

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

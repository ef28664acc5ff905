"""``cs dispatch deploy-repository`` with the ``csdocker`` builder, for real: a git repository is cloned,
built into an image by a real engine (Docker's CLI on podman's API, with ``DOCKER_BUILDKIT=1`` inherited),
pushed with credentials to a real registry (``docker-registry``, htpasswd), and handed to nomad-pack
(a recording fake: there is no Nomad here) with the pushed image in its vars file.

What it asserts:

- the deployment succeeds (``status.changed`` → ``succeeded`` → ``build.log.end``) on a real nats-server;
- the registry holds ``<registryUrl>/<namespace>/<imageName>:<imageTag>`` and the digest the deployment
  reports in its log is exactly the registry's;
- ``vars.hcl`` names the pushed image as the original does (``image = "<imageName>:<imageTag>"`` with the
  registry prefix), and its network is the port the image EXPOSEs (no ``networks`` in the params);
- the registry password (and its base64 ``user:password`` form) is in no output, event, argv or file.

And a repository whose Dockerfile is bad: the engine's output is streamed into the build log, the
deployment fails (``failed`` + ``build.log.end`` failed, exit 1) with the engine's own last line in
the error, and nothing is pushed or deployed.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from cloudstation.plugins.builtin.packs.schema import read_vars_file
from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import IDENTITY, NOMAD_TOKEN, dispatch, log_text, outcome_events, setup_stream, stored
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin
from tests.natsserver import NatsServer
from tests.plugins import engine_kit
from tests.plugins.engine_kit import LABEL, LocalRegistry, PodmanService, Recorder
from tests.sources.sources_testkit import make_bare_repo

fake_bin = fakebin.fake_bin  # the fixtures
local_registry = engine_kit.local_registry
podman_service = engine_kit.podman_service

DOCKERFILE = f"FROM scratch\nCOPY index.html /www/index.html\nEXPOSE 8080\nLABEL {LABEL}\n"


def _task_env(
    cs: CsRunner,
    nats_server: NatsServer,
    podman_service: PodmanService,
    fake_bin: FakeBin,
    recorder: Recorder,
    tmp_path: Path,
) -> dict[str, str]:
    """A dispatched task's environment: the real engine, recorded real tools, fakes for Nomad, a git remote."""
    return {
        **setup_stream(cs, nats_server),
        **podman_service.env,
        "PATH": f"{fake_bin.bin_dir}:{recorder.path()}",
        "HOME": str(tmp_path / "home"),
        "CS_WORK_DIR": str(tmp_path / "work"),
        "NOMAD_ALLOC_DIR": str(tmp_path / "alloc"),
        "CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}",
    }


def test_deploy_repository_builds_and_pushes_a_real_image(
    cs: CsRunner,
    nats_server: NatsServer,
    fake_bin: FakeBin,
    podman_service: PodmanService,
    local_registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    tools = {"docker": engine_kit.docker_cli(), **engine_kit.require("podman", "git")}  # real tools, recorded
    recorder = Recorder.make(tmp_path / "tools", tools)
    fake_bin.add("nomad-pack")
    fake_bin.add("nomad")
    make_bare_repo(tmp_path / "remote", "acme/web", {"main": {"Dockerfile": DOCKERFILE, "index.html": "hello\n"}})
    # an inherited DOCKER_BUILDKIT=1 must not break the build on an engine without BuildKit
    env = _task_env(cs, nats_server, podman_service, fake_bin, recorder, tmp_path) | {"DOCKER_BUILDKIT": "1"}
    params: dict[str, Any] = {
        **IDENTITY,
        "repository": "acme/web",
        "branch": "main",
        "imageName": "web",
        "imageTag": "v1",
        "nomadToken": NOMAD_TOKEN,
        "build": {
            "builder": "csdocker",
            "registryUrl": local_registry.host,
            "registryNamespace": "demo",
            "registryUsername": local_registry.username,
            "registryPassword": local_registry.password,
        },
    }
    res = dispatch(cs, "deploy-repository", params, env, timeout=300)
    assert res.returncode == 0, res.stderr
    msgs = stored(nats_server)
    assert [subject for subject, _ in outcome_events(msgs)] == [
        "deployment.status.changed",
        "deployment.succeeded",
        "build.log.end.dep-1",
    ]
    text = log_text(msgs)
    assert "csdocker: engine: docker on Podman Engine" in text and "classic builder (DOCKER_BUILDKIT=0)" in text

    image = f"{local_registry.host}/demo/web:v1"
    held = local_registry.digest("demo/web", "v1")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", held)
    assert f"docker: pushed {image} (digest {held}, from the registry)" in text
    reported = set(re.findall(r"sha256:[0-9a-f]{64}", text.split("docker: pushed", 1)[1].split("\n", 1)[0]))
    assert reported == {held}

    values = read_vars_file(tmp_path / "work" / "state" / "plugins" / "nomad-pack" / "dispatch" / "app" / "vars.hcl")
    assert values["image"] == image  # imageName:imageTag under the registry, as the original's vars.hcl
    assert [n["port"] for n in values["network"]] == [8080]  # type: ignore[attr-defined]

    docker_steps = [argv[1] for argv in recorder.argvs() if argv[0] == "docker"]
    assert docker_steps == ["version", "build", "image", "login", "tag", "push"]
    secret_forms = [
        local_registry.password,
        base64.b64encode(f"{local_registry.username}:{local_registry.password}".encode()).decode(),
    ]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    for secret in secret_forms:
        assert secret not in res.stdout + res.stderr
        assert all(secret not in m.data.decode() for m in msgs)
        assert all(secret not in " ".join(argv) for argv in recorder.argvs())
        assert all(secret not in " ".join(call.argv) for call in fake_bin.calls())
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
    podman_service.podman("rmi", "-f", image, check=False)


def test_a_bad_dockerfile_fails_the_deployment_with_the_engines_message(
    cs: CsRunner,
    nats_server: NatsServer,
    fake_bin: FakeBin,
    podman_service: PodmanService,
    local_registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    recorder = Recorder.make(tmp_path / "tools", {"docker": engine_kit.docker_cli(), **engine_kit.require("git")})
    fake_bin.add("nomad-pack")
    files = {"Dockerfile": "FROM scratch\nCOPY missing-file.txt /x\n", "index.html": "hello\n"}
    make_bare_repo(tmp_path / "remote", "acme/web", {"main": files})
    env = _task_env(cs, nats_server, podman_service, fake_bin, recorder, tmp_path)
    params: dict[str, Any] = {
        **IDENTITY,
        "repository": "acme/web",
        "branch": "main",
        "build": {"builder": "csdocker", "registryUrl": local_registry.host},
    }
    res = dispatch(cs, "deploy-repository", params, env, timeout=300)
    assert res.returncode == 1, res.stderr
    msgs = stored(nats_server)
    assert [(subject, event.get("status")) for subject, event in outcome_events(msgs)] == [
        ("deployment.status.changed", "IN_PROGRESS"),
        ("deployment.failed", None),
        ("build.log.end.dep-1", "failed"),
    ]
    text = log_text(msgs)
    assert "STEP 2/2: COPY missing-file.txt /x" in text  # the build's own output was streamed
    # the engine's own last line, streamed, then named by the failure (and the deployment's error)
    (engine_line,) = [line for line in text.splitlines() if line.startswith('building at STEP "COPY missing-file.txt')]
    assert "no such file or directory" in engine_line
    assert f"csdocker: docker build failed (exit 1): {engine_line}" in text
    assert fake_bin.calls("nomad-pack") == []  # nothing deployed
    assert [argv[1] for argv in recorder.argvs() if argv[0] == "docker"] == ["version", "build"]  # no push

"""The builtins that shell out (csdocker, docker, railpack, nixpacks, nomad-pack) against recording fakes.

Each test runs the real plugin code through a real :class:`PluginContext` / :class:`BuildLog` (no NATS);
the tools are the fakes of :mod:`tests.fakes.fakebin`, which record argv, cwd, env and stdin. Secrets are
canaries: they must reach the tool only where intended (stdin, env) and never argv or a log line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cloudstation.config import hclwriter, parse_config
from cloudstation.events.buildlog import BuildLog, LogLine
from cloudstation.events.identity import DeploymentRef
from cloudstation.plugins.base import Artifact, PluginContext, PluginError, Status
from cloudstation.plugins.builtin._engine import buildkit_features
from cloudstation.plugins.builtin.docker import CsDocker, Docker, DockerConfig
from cloudstation.plugins.builtin.nixpacks import Nixpacks
from cloudstation.plugins.builtin.nomadpack import (
    NomadPack,
    NomadPackConfig,
    parse_job_status,
    read_vars_file,
    validate_pack_vars,
)
from cloudstation.plugins.builtin.packs import PACKS_DIR, embedded_pack_dir
from cloudstation.plugins.builtin.packs.schema import load_variables, parse_type, vars_problems
from cloudstation.plugins.builtin.railpack import Railpack
from cloudstation.plugins.registry import PluginRegistry
from cloudstation.redaction import Redactor
from tests.fakes import fakebin
from tests.fakes.fakebin import NOMAD_STATUS, FakeBin, Invocation, Rule
from tests.plugins.engine_kit import free_port
from tests.plugins.fake_registry import DIGEST, FakeRegistry, fake_registry

fake_bin = fakebin.fake_bin  # the fixture

PASSWORD = "canary-registry-pass-7f3e9d"
NOMAD_TOKEN = "canary-nomad-token-4b2a61"
PACK_TOKEN = "canary-pack-token-c0ffee"
BUILD_SECRET = "canary-build-secret-91d2"
SECRETS = (PASSWORD, NOMAD_TOKEN, PACK_TOKEN, BUILD_SECRET)


@dataclass
class Run:
    """A plugin context over a real log stream whose (redacted) lines are kept."""

    ctx: PluginContext
    lines: list[LogLine] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(line.content for line in self.lines)

    def assert_no_secret_logged(self) -> None:
        for line in self.lines:
            for secret in SECRETS:
                assert secret not in line.content


def make_run(tmp_path: Path, fake: FakeBin, *, secrets: tuple[str, ...] = SECRETS) -> Run:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "Dockerfile").write_text("FROM scratch\n")
    lines: list[LogLine] = []
    log = BuildLog(None, DeploymentRef("test-dep", 1), echo=lines.append, redactor=Redactor(secrets))
    ctx = PluginContext(project="demo", app="web", app_path=app, state_dir=tmp_path / "state", log=log, env=fake.env)
    return Run(ctx, lines)


@pytest.fixture
def run(tmp_path: Path, fake_bin: FakeBin) -> Run:
    return make_run(tmp_path, fake_bin)


def assert_secret_free(calls: list[Invocation], *, allowed_env: dict[str, str] | None = None) -> None:
    """No canary in any argv; in env only where ``allowed_env`` says; stdin checked by the caller."""
    for call in calls:
        for secret in SECRETS:
            assert all(secret not in arg for arg in call.argv), call.argv
            for key, value in call.env.items():
                if secret in value:
                    assert allowed_env is not None and allowed_env.get(key) == value, key


# -- csdocker / docker build -------------------------------------------------------------------------
# The real engine is tested in test_docker_real.py; the fakes play what it cannot be made to do here:
# a Docker Engine with buildx (BuildKit), a build failing in a given way, a docker without any engine.

VERSION = ["docker", "version", "--format", "{{json .}}"]
DOCKER_ENGINE = json.dumps({"Client": {"Version": "28.2.2"}, "Server": {"Version": "27.3.1", "Components": []}})
INSPECT = json.dumps([{"Id": "sha256:" + "2" * 64, "Config": {"ExposedPorts": {"8080/tcp": {}}, "Env": ["PORT=1"]}}])


async def test_csdocker_build_exact_argv_env_and_cwd(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("docker", Rule(("image", "inspect"), stdout=INSPECT))
    config = msgspec.convert(
        {
            "image": "reg.example.com/team/web",
            "tag": "v1",
            "build_args": {"NODE_ENV": "production", "GREETING": "hello world"},
            "env": {"API_KEY": BUILD_SECRET},
            "platform": "linux/amd64",
        },
        CsDocker.Config,
    )
    artifact = await CsDocker(config).build(run.ctx)

    assert artifact == Artifact(
        kind="image",
        ref="reg.example.com/team/web:v1",
        ports=(8080,),
        metadata={
            "builder": "csdocker",
            "image": "reg.example.com/team/web",
            "tag": "v1",
            "engine": "docker",
            "image_id": "sha256:" + "2" * 64,
        },
    )
    version, call, inspect = fake_bin.calls()
    assert version.argv == VERSION
    assert call.argv == [
        "docker", "build", "-t", "reg.example.com/team/web:v1", "-f", "Dockerfile",
        "--platform", "linux/amd64",
        "--build-arg", "NODE_ENV=production", "--build-arg", "GREETING=hello world",
        "--build-arg", "API_KEY",
        ".",
    ]  # fmt: skip
    assert inspect.argv == ["docker", "image", "inspect", "reg.example.com/team/web:v1"]
    assert call.cwd == str(run.ctx.app_path)
    assert call.stdin == ""
    # no engine named by `docker version`: no BuildKit, and an inherited DOCKER_BUILDKIT=1 is overridden
    assert call.env_changes() == {"PATH": str(fake_bin.bin_dir), "DOCKER_BUILDKIT": "0", "API_KEY": BUILD_SECRET}
    assert_secret_free([version, call, inspect], allowed_env={"API_KEY": BUILD_SECRET})
    assert "csdocker: engine: docker, building with the classic builder (DOCKER_BUILDKIT=0)" in run.text
    run.assert_no_secret_logged()


async def test_buildkit_only_where_the_engine_has_it_and_the_dockerfile_needs_it(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("docker", Rule(("version",), stdout=DOCKER_ENGINE), Rule(("image", "inspect"), stdout=INSPECT))
    # a plain Dockerfile on a Docker Engine: the classic builder, buildx is not even asked for
    await CsDocker(CsDocker.Config()).build(run.ctx)
    assert [c.args[0] for c in fake_bin.calls()] == ["version", "build", "image"]
    assert fake_bin.calls()[1].env["DOCKER_BUILDKIT"] == "0"
    assert "docker on Docker Engine 27.3.1, building with the classic builder (DOCKER_BUILDKIT=0); nothing" in run.text

    # a Dockerfile that needs BuildKit, and buildx is there: BuildKit
    (run.ctx.app_path / "Dockerfile").write_text("# syntax=docker/dockerfile:1\nFROM scratch\n")
    await CsDocker(CsDocker.Config()).build(run.ctx)
    assert [c.args[:2] for c in fake_bin.calls()[3:]] == [
        ["version", "--format"],
        ["buildx", "version"],
        ["build", "-t"],
        ["image", "inspect"],
    ]
    assert fake_bin.calls()[5].env["DOCKER_BUILDKIT"] == "1"
    assert "docker on Docker Engine 27.3.1, building with BuildKit (buildx)\n" in run.text
    assert "uses BuildKit features" not in run.text

    # needed, but the CLI has no buildx: the classic builder, and the log says the Dockerfile may fail
    fake_bin.add("docker", Rule(("version",), stdout=DOCKER_ENGINE), Rule(("buildx",), exit_code=1))
    (run.ctx.app_path / "Dockerfile").write_text("FROM scratch\nRUN --mount=type=cache,target=/c true\n")
    await CsDocker(CsDocker.Config()).build(run.ctx)
    assert fake_bin.calls()[-2].env["DOCKER_BUILDKIT"] == "0"
    assert "the classic builder (DOCKER_BUILDKIT=0); the docker CLI has no buildx component" in run.text
    assert "Dockerfile uses BuildKit features (a syntax directive, RUN --mount, COPY --link or a heredoc)" in run.text


@pytest.mark.parametrize(
    ("text", "needs"),
    [
        ("FROM scratch\nCOPY a /a\n", False),
        ("# syntax=docker/dockerfile:1.7\nFROM scratch\n", True),
        ("FROM x\nRUN --mount=type=secret,id=k cat /run/secrets/k\n", True),
        ("FROM x\nRUN --network=none true\n", True),
        ("FROM x\nCOPY --link a /a\n", True),
        ("FROM x\nRUN <<EOF\necho hi\nEOF\n", True),
        ("FROM x\n# a comment about --mount\nRUN echo --mount\n", False),
    ],
)
def test_buildkit_features(tmp_path: Path, text: str, needs: bool) -> None:
    (tmp_path / "Dockerfile").write_text(text)
    assert buildkit_features(tmp_path / "Dockerfile") is needs


async def test_docker_without_an_engine_falls_back_to_podman(run: Run, fake_bin: FakeBin) -> None:
    down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
    fake_bin.add("docker", Rule(("version",), stderr=down, exit_code=1))
    fake_bin.add("podman")
    artifact = await CsDocker(CsDocker.Config()).build(run.ctx)
    assert [c.argv[:2] for c in fake_bin.calls()] == [
        ["docker", "version"],
        ["podman", "build"],
        ["podman", "image"],
    ]
    assert "DOCKER_BUILDKIT" not in fake_bin.calls()[1].env_changes()
    assert artifact.metadata["engine"] == "podman"
    assert "podman, building with podman build (Buildah; no BuildKit); docker reaches no engine (Cannot" in run.text

    fake_bin.add("docker", Rule(("version",), stderr=down, exit_code=1))
    (fake_bin.bin_dir / "podman").unlink()
    await CsDocker(msgspec.convert({"cli": "docker"}, CsDocker.Config)).build(run.ctx)  # forced: docker anyway
    assert fake_bin.calls()[-2].argv[:2] == ["docker", "build"]


async def test_docker_build_context_subdir_defaults_and_target(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("docker")
    sub = run.ctx.app_path / "svc"
    sub.mkdir()
    (sub / "Containerfile").write_text("FROM scratch\n")
    config = msgspec.convert({"context": "svc", "dockerfile": "Containerfile", "target": "prod"}, Docker.Config)
    artifact = await Docker(config).build(run.ctx)

    assert artifact.ref == "web:latest"  # the app name, tag "latest"
    assert artifact.ports == ()  # the fake's inspect printed nothing
    (call,) = [c for c in fake_bin.calls("docker") if c.args[0] == "build"]
    assert call.argv == ["docker", "build", "-t", "web:latest", "-f", "Containerfile", "--target", "prod", "."]
    assert call.cwd == str(sub)


async def test_docker_build_failure_names_the_step_and_the_engines_message(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add(
        "docker", Rule(("build",), stderr="#5 ERROR: x\nERROR: failed to solve: no such stage\n\n", exit_code=17)
    )
    with pytest.raises(PluginError, match=r"^docker build failed \(exit 17\): ERROR: failed to solve: no such stage$"):
        await CsDocker(CsDocker.Config()).build(run.ctx)
    assert "ERROR: failed to solve: no such stage\n" in [line.content for line in run.lines if line.output == "stderr"]
    assert [c.args[0] for c in fake_bin.calls()] == ["version", "build"]  # no inspect after a failure


async def test_missing_docker_is_a_clear_error(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad")  # a bin dir without docker or podman
    with pytest.raises(PluginError, match=r"^docker is not installed \(not found on PATH\); nor is podman$"):
        await CsDocker(CsDocker.Config()).build(run.ctx)
    with pytest.raises(PluginError, match=r"^podman is not installed \(not found on PATH\)$"):
        await CsDocker(msgspec.convert({"cli": "podman"}, CsDocker.Config)).build(run.ctx)


async def test_missing_dockerfile_or_context_fails_before_running(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("docker")
    with pytest.raises(PluginError, match="no Dockerfile at 'Nope'"):
        await CsDocker(msgspec.convert({"dockerfile": "Nope"}, CsDocker.Config)).build(run.ctx)
    with pytest.raises(PluginError, match="build context 'missing' is not a directory"):
        await CsDocker(msgspec.convert({"context": "missing"}, CsDocker.Config)).build(run.ctx)
    assert fake_bin.calls() == []


def test_cli_is_checked_with_the_config() -> None:
    with pytest.raises(msgspec.ValidationError, match="cli must be 'docker', 'podman' or empty, not 'nerdctl'"):
        msgspec.convert({"cli": "nerdctl"}, CsDocker.Config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"image": "-rm"}, "invalid image name '-rm'"),
        ({"tag": "a b"}, "invalid image tag 'a b'"),
        ({"env": {"PATH": "x"}}, "build env name 'PATH' would change the docker client's own environment"),
        ({"env": {"DOCKER_HOST": "x"}}, "'DOCKER_HOST' would change"),
        ({"env": {"CONTAINERS_REGISTRIES_CONF": "x"}}, "'CONTAINERS_REGISTRIES_CONF' would change"),
        ({"env": {"A-B": "x"}}, "invalid build env name 'A-B'"),
        ({"build_args": {"A=B": "x"}}, "invalid --build-arg name 'A=B'"),
    ],
)
async def test_build_config_errors(run: Run, fake_bin: FakeBin, config: dict[str, Any], message: str) -> None:
    fake_bin.add("docker")
    with pytest.raises(PluginError, match=re.escape(message)):
        await CsDocker(msgspec.convert(config, CsDocker.Config)).build(run.ctx)
    assert fake_bin.calls() == []


# -- docker push -------------------------------------------------------------------------------------

BUILT = Artifact(kind="image", ref="web:v1", metadata={"builder": "csdocker", "engine": "docker"})


def docker_registry(**fields: Any) -> Docker:
    return Docker(msgspec.convert(fields, Docker.Config))


async def test_push_logs_in_with_password_on_stdin_only(tmp_path: Path, fake_bin: FakeBin) -> None:
    run = make_run(tmp_path, fake_bin, secrets=())  # the plugin must register the password itself
    fake_bin.add("docker", Rule(("login",), stdout="read: ", echo_stdin=True))  # a tool that echoes stdin
    with fake_registry(FakeRegistry(auth="basic", username="bot", password=PASSWORD)) as registry:
        plugin = docker_registry(
            image="team/web", registry=f"http://{registry.host}/", username="bot", password=PASSWORD
        )
        pushed = await plugin.push(run.ctx, BUILT)

    target = f"{registry.host}/team/web:v1"
    login, tag, push = fake_bin.calls()
    assert login.argv == ["docker", "login", registry.host, "-u", "bot", "--password-stdin"]
    assert login.stdin == PASSWORD
    assert tag.argv == ["docker", "tag", "web:v1", target]
    assert push.argv == ["docker", "push", target]
    assert tag.stdin == push.stdin == ""
    # the login lives in a private directory, the same for every step, deleted afterwards
    private = Path(login.env_changes()["DOCKER_CONFIG"])
    assert login.env_changes()["REGISTRY_AUTH_FILE"] == str(private / "auth.json")
    assert private.parent == run.ctx.state_dir / "plugins" / "docker" / "demo" / "web"
    assert push.env["DOCKER_CONFIG"] == tag.env["DOCKER_CONFIG"] == str(private)
    assert not list(private.parent.glob("push-*"))  # deleted
    assert_secret_free([login, tag, push])  # not in argv, not in any env
    assert PASSWORD not in repr(plugin.config)
    assert pushed == Artifact(kind="image", ref=target, digest=DIGEST, metadata=pushed.metadata)
    assert pushed.metadata["registry"] == registry.host
    assert pushed.metadata["digest_source"] == "registry"
    assert [(m, a) for m, _, a in registry.requests] == [("HEAD", ""), ("HEAD", registry.basic())]
    assert f"docker: pushed {target} (digest {DIGEST}, from the registry)" in run.text
    assert "read: ***" in run.text  # the echoed password was redacted
    run.assert_no_secret_logged()


async def test_push_with_username_but_no_password_fails_before_running(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("docker")
    with pytest.raises(PluginError, match="username is set but password is empty"):
        await docker_registry(image="reg.example.com/web", username="bot").push(run.ctx, BUILT)
    with pytest.raises(PluginError, match="password is set but username is empty"):
        await docker_registry(image="reg.example.com/web", password=PASSWORD).push(run.ctx, BUILT)
    assert fake_bin.calls() == []
    run.assert_no_secret_logged()


async def test_push_without_credentials_skips_login_and_an_unknown_digest_is_a_warning(
    run: Run, fake_bin: FakeBin
) -> None:
    fake_bin.add("docker")
    host = f"localhost:{free_port()}"  # nothing listens there: the registry cannot be asked
    pushed = await docker_registry(image=f"{host}/web", tag="v2").push(run.ctx, BUILT)
    assert fake_bin.argvs() == [
        ["docker", "tag", "web:v1", f"{host}/web:v2"],
        ["docker", "push", f"{host}/web:v2"],
    ]
    assert "DOCKER_CONFIG" not in fake_bin.calls()[0].env_changes()  # the client's own stored logins
    assert pushed.ref == f"{host}/web:v2"
    assert pushed.digest == ""
    assert pushed.metadata["digest_warning"].startswith(f"registry {host} unreachable (https: ")
    assert f"warning: docker: pushed {host}/web:v2, but its digest is unknown: registry {host} unreachable" in run.text


async def test_push_detects_the_engine_when_the_builder_did_not_say(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("podman")  # no docker: a railpack-built image is pushed with podman
    built = Artifact(kind="image", ref="web:v1", metadata={"builder": "railpack"})
    with fake_registry(FakeRegistry(auth="none", repository="web")) as registry:
        pushed = await docker_registry(image=f"{registry.host}/web", insecure=True).push(run.ctx, built)
    tag, push = fake_bin.calls()
    assert tag.argv == ["podman", "tag", "web:v1", f"{registry.host}/web:v1"]
    assert push.argv[:3] == ["podman", "push", "--tls-verify=false"]
    assert push.argv[3] == "--digestfile" and push.argv[5:] == [f"{registry.host}/web:v1"]
    assert pushed.digest == DIGEST  # the fake wrote no digest file: the registry was asked
    assert "docker: pushing with podman (docker is not installed)" in run.text


async def test_push_failures_name_the_step_and_the_tools_message(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("docker", Rule(("login",), stderr="Error response from daemon: unauthorized\n", exit_code=1))
    with pytest.raises(
        PluginError,
        match=r"^docker login to reg.example.com failed \(exit 1\): Error response from daemon: unauthorized$",
    ):
        await docker_registry(image="reg.example.com/web", username="bot", password=PASSWORD).push(run.ctx, BUILT)
    assert [c.args[0] for c in fake_bin.calls()] == ["login"]  # nothing tagged or pushed
    assert not list((run.ctx.state_dir / "plugins" / "docker").rglob("push-*"))

    fake_bin.add("docker", Rule(("push",), stderr="denied: requested access to the resource is denied\n", exit_code=1))
    with pytest.raises(PluginError, match=r"^docker push of reg.example.com/web:v1 failed \(exit 1\): denied: "):
        await docker_registry(image="reg.example.com/web").push(run.ctx, BUILT)
    run.assert_no_secret_logged()


async def test_push_of_a_directory_artifact_is_refused(run: Run, fake_bin: FakeBin) -> None:
    with pytest.raises(PluginError, match="needs an image artifact"):
        await docker_registry().push(run.ctx, Artifact(kind="directory", ref="/tmp/x"))


async def test_docker_registry_from_cloudstation_hcl(tmp_path: Path, fake_bin: FakeBin) -> None:
    text = """
project = "demo"
variable "registry_password" {
  type      = "string"
  sensitive = true
  env       = ["REGISTRY_PASSWORD"]
}
app "web" {
  path = "./web"
  build    { use = "csdocker"  name = "web"  tag = "v1"  build_args = { MODE = "prod" } }
  registry {
    use      = "docker"
    image    = "reg.example.com/team/web"
    username = "bot"
    password = var.registry_password
  }
  deploy   { use = "nomad-pack"  deployment_name = "web"  nomad_token = "static-token-value" }
}
"""
    project = parse_config(text, "cloudstation.hcl", {"REGISTRY_PASSWORD": PASSWORD})
    app = project.app("web")
    assert app.registry is not None
    plugins = PluginRegistry()
    builder = plugins.create(app.build)
    registry = plugins.create(app.registry)
    platform = plugins.create(app.deploy)
    assert isinstance(builder, CsDocker)
    assert isinstance(registry, Docker)
    assert isinstance(registry.config, DockerConfig)
    assert isinstance(platform, NomadPack)

    fake_bin.add("docker")
    run = make_run(tmp_path, fake_bin, secrets=tuple(project.sensitive_values))
    artifact = await builder.build(run.ctx)
    pushed = await registry.push(run.ctx, artifact)
    assert fake_bin.argvs() == [
        VERSION,
        ["docker", "build", "-t", "web:v1", "-f", "Dockerfile", "--build-arg", "MODE=prod", "."],
        ["docker", "image", "inspect", "web:v1"],
        ["docker", "login", "reg.example.com", "-u", "bot", "--password-stdin"],
        ["docker", "tag", "web:v1", "reg.example.com/team/web:v1"],
        ["docker", "push", "reg.example.com/team/web:v1"],
    ]
    assert fake_bin.calls()[3].stdin == PASSWORD
    assert pushed.ref == "reg.example.com/team/web:v1"
    run.assert_no_secret_logged()


# -- railpack / nixpacks -----------------------------------------------------------------------------


async def test_railpack_exact_argv_and_env(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("railpack")
    config = msgspec.convert(
        {
            "name": "web",
            "tag": "v3",
            "build_args": {"NODE_ENV": "production"},
            "env": {"NPM_TOKEN": BUILD_SECRET},
            "build_cmd": "npm run build",
            "start_cmd": "node server.js",
        },
        Railpack.Config,
    )
    artifact = await Railpack(config).build(run.ctx)
    (call,) = fake_bin.calls()
    assert call.argv == [
        "railpack", "build", "--name", "web:v3",
        "--build-cmd", "npm run build", "--start-cmd", "node server.js",
        "--env", "NODE_ENV=production", "--env", "NPM_TOKEN",
        ".",
    ]  # fmt: skip
    assert call.cwd == str(run.ctx.app_path)
    assert call.env_changes() == {"PATH": str(fake_bin.bin_dir), "DOCKER_BUILDKIT": "1", "NPM_TOKEN": BUILD_SECRET}
    assert artifact == Artifact(
        kind="image", ref="web:v3", metadata={"builder": "railpack", "image": "web", "tag": "v3"}
    )
    assert_secret_free([call], allowed_env={"NPM_TOKEN": BUILD_SECRET})
    run.assert_no_secret_logged()


async def test_nixpacks_exact_argv_and_env(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nixpacks")
    (run.ctx.app_path / "api").mkdir()
    config = msgspec.convert(
        {"image": "reg.example.com/api", "context": "api", "platform": "linux/arm64", "env": {"KEY": BUILD_SECRET}},
        Nixpacks.Config,
    )
    artifact = await Nixpacks(config).build(run.ctx)
    (call,) = fake_bin.calls()
    assert call.argv == [
        "nixpacks", "build", ".", "--name", "reg.example.com/api:latest", "--platform", "linux/arm64", "--env", "KEY",
    ]  # fmt: skip
    assert call.cwd == str(run.ctx.app_path / "api")
    assert call.env_changes() == {"PATH": str(fake_bin.bin_dir), "KEY": BUILD_SECRET}
    assert artifact.kind == "image"
    assert artifact.ref == "reg.example.com/api:latest"


async def test_source_builders_read_the_ports_from_the_built_image(run: Run, fake_bin: FakeBin) -> None:
    env_port = json.dumps([{"Id": "sha256:" + "3" * 64, "Config": {"Env": ["PORT=5000"]}}])
    fake_bin.add("nixpacks")
    fake_bin.add("docker", Rule(("image", "inspect"), stdout=env_port))
    artifact = await Nixpacks(Nixpacks.Config()).build(run.ctx)
    assert fake_bin.argvs()[1] == ["docker", "image", "inspect", "web:latest"]
    assert artifact.ports == (5000,) and artifact.metadata["image_id"] == "sha256:" + "3" * 64
    assert "image web:latest: exposes no port; PORT=5000 in its environment" in run.text

    fake_bin.add("docker", Rule(("image", "inspect"), stderr="Error: No such image: web:latest\n", exit_code=1))
    fake_bin.add("railpack")
    artifact = await Railpack(Railpack.Config()).build(run.ctx)
    assert artifact.ports == ()
    failed = "warning: docker image inspect web:latest failed (Error: No such image: web:latest): ports unknown"
    assert failed in run.text


@pytest.mark.parametrize(("plugin", "tool"), [(Railpack, "railpack"), (Nixpacks, "nixpacks")])
async def test_source_builders_fail_and_missing(
    run: Run, fake_bin: FakeBin, plugin: type[Railpack] | type[Nixpacks], tool: str
) -> None:
    with pytest.raises(PluginError, match=rf"^{tool} is not installed \(not found on PATH\)$"):
        await plugin(plugin.Config()).build(run.ctx)
    fake_bin.add(tool, Rule(("build",), exit_code=2))
    with pytest.raises(PluginError, match=rf"^{tool} build failed \(exit 2\)$"):
        await plugin(plugin.Config()).build(run.ctx)


# -- nomad-pack --------------------------------------------------------------------------------------

IMAGE = Artifact(kind="image", ref="reg.example.com/team/web:v1", digest=DIGEST)
NASTY = 'quote " backslash \\ ${not_interp} %{nor_directive} newline\n tab\t unicode é'


def nomad_pack(**fields: Any) -> NomadPack:
    return NomadPack(msgspec.convert(fields, NomadPackConfig))


async def test_embedded_pack_deploy(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad-pack")
    variables = {
        "count": 2,
        "datacenters": ["dc1", "dc2"],
        "resources": {"cpu": 500, "memory": 512, "memory_max": 1024, "gpu": 0},
        "env_vars": [{"key": "GREETING", "value": NASTY}, {"key": "PORT", "value": "3000"}],
        "network": [
            {
                "name": "3000",
                "port": 3000,
                "type": "http",
                "public": True,
                "domain": "web.example.app",
                "custom_domain": "",
                "has_health_check": "http",
                "health_check": {"type": "http", "path": "/health", "interval": "10s", "timeout": "2s", "port": 3000},
            }
        ],
        "use_csi_volume": True,
        "volume_name": "vol-1",
        "volume_mount_destination": ["/data"],
        "service_id": "svc-1",
    }
    plugin = nomad_pack(
        deployment_name="web-prod", nomad_addr="http://nomad.example:4646", nomad_token=NOMAD_TOKEN, variables=variables
    )
    deployment = await plugin.deploy(run.ctx, IMAGE)

    vars_file = run.ctx.state_dir / "plugins" / "nomad-pack" / "demo" / "web" / "vars.hcl"
    (call,) = fake_bin.calls()
    assert call.argv == [
        "nomad-pack", "run", str(PACKS_DIR / "cloudstation"), "--name=web-prod", f"--var-file={vars_file}",
    ]  # fmt: skip
    assert call.env_changes() == {
        "PATH": str(fake_bin.bin_dir),
        "NOMAD_ADDR": "http://nomad.example:4646",
        "NOMAD_TOKEN": NOMAD_TOKEN,
    }
    assert_secret_free([call], allowed_env={"NOMAD_TOKEN": NOMAD_TOKEN})
    run.assert_no_secret_logged()
    assert NOMAD_TOKEN not in repr(plugin.config)
    assert deployment.id == "web-prod"
    assert deployment.metadata["image"] == IMAGE.ref

    written = read_vars_file(vars_file)
    assert written == {**variables, "job_name": "web-prod", "image": IMAGE.ref}
    validate_pack_vars(written)  # and against the embedded pack's variables.hcl
    assert vars_file.stat().st_mode & 0o777 == 0o600


async def test_embedded_pack_rejects_invalid_vars_before_running(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad-pack")
    plugin = nomad_pack(variables={"count": "two", "imagee": "x", "resources": {"cpu": 1}})
    with pytest.raises(PluginError) as caught:
        await plugin.deploy(run.ctx, IMAGE)
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown variable 'imagee'" in message
    assert "count: must be a number" in message
    assert "resources: missing attribute 'memory'" in message
    assert fake_bin.calls() == []


async def test_registry_pack_deploy(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad-pack")
    plugin = nomad_pack(
        deployment_name="web",
        pack="web_app",
        registry_name="acme",
        registry_source="github.com/acme/packs",
        registry_ref="v1.2.0",
        registry_target="web_app",
        registry_token=PACK_TOKEN,
        nomad_token=NOMAD_TOKEN,
        variables={"image": "x:1", "replicas": 3, "labels": {"team": "core"}},
        variable_files=["extra.hcl"],
        parser_v1=True,
    )
    await plugin.deploy(run.ctx, IMAGE)
    vars_file = run.ctx.state_dir / "plugins" / "nomad-pack" / "demo" / "web" / "vars.hcl"
    add, run_call = fake_bin.calls()
    assert add.argv == [
        "nomad-pack", "registry", "add", "acme", "github.com/acme/packs", "--target=web_app", "--ref=v1.2.0",
    ]  # fmt: skip
    assert run_call.argv == [
        "nomad-pack", "run", "web_app", "--registry=acme", "--ref=v1.2.0", "--name=web",
        f"--var-file={vars_file}", f"--var-file={run.ctx.app_path / 'extra.hcl'}", "--parser-v1",
    ]  # fmt: skip
    # The registry token reaches git only, as a host-scoped header in the environment.
    git_env = {k: v for k, v in add.env_changes().items() if k.startswith("GIT_CONFIG_")}
    assert git_env["GIT_CONFIG_COUNT"] == "1"
    assert git_env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert git_env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    assert not any(k.startswith("GIT_CONFIG_") for k in run_call.env_changes())
    assert add.env_changes()["NOMAD_TOKEN"] == run_call.env_changes()["NOMAD_TOKEN"] == NOMAD_TOKEN
    for call in (add, run_call):
        assert all(PACK_TOKEN not in a and NOMAD_TOKEN not in a for a in call.argv)
    # job_name (and the image) go to a registry pack too: the original pack's defaults are placeholders
    assert read_vars_file(vars_file) == {"image": "x:1", "replicas": 3, "labels": {"team": "core"}, "job_name": "web"}
    run.assert_no_secret_logged()


async def test_registry_needs_name_and_source(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad-pack")
    with pytest.raises(PluginError, match="needs both registry_name and registry_source"):
        await nomad_pack(registry_source="github.com/acme/packs").deploy(run.ctx, IMAGE)
    assert fake_bin.calls() == []


async def test_nomad_pack_run_failures(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad-pack", Rule(("run",), stderr="Error: failed to render\n", exit_code=1))
    with pytest.raises(PluginError, match=r"^nomad-pack run failed \(exit 1\)$"):
        await nomad_pack(nomad_token=NOMAD_TOKEN).deploy(run.ctx, IMAGE)

    # Deployed, then the output template failed: a success, as in the original.
    fake_bin.add("nomad-pack", Rule(("run",), stdout="Pack successfully deployed\noutput error\n", exit_code=1))
    deployment = await nomad_pack().deploy(run.ctx, IMAGE)
    assert deployment.id == "web"

    fake_bin.add("nomad-pack", Rule(("registry", "add"), exit_code=128))
    with pytest.raises(PluginError, match=r"^nomad-pack registry add failed \(exit 128\)$"):
        await nomad_pack(registry_name="a", registry_source="github.com/a/b").deploy(run.ctx, IMAGE)
    run.assert_no_secret_logged()


async def test_missing_nomad_pack(run: Run, fake_bin: FakeBin) -> None:
    with pytest.raises(PluginError, match=r"^nomad-pack is not installed \(not found on PATH\)$"):
        await nomad_pack().deploy(run.ctx, IMAGE)


async def test_destroy_stops_and_purges(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad")
    await nomad_pack(deployment_name="web-prod", nomad_addr="http://n:4646", nomad_token=NOMAD_TOKEN).destroy(run.ctx)
    (call,) = fake_bin.calls()
    assert call.argv == ["nomad", "job", "stop", "-purge", "web-prod"]
    assert call.env_changes() == {
        "PATH": str(fake_bin.bin_dir),
        "NOMAD_ADDR": "http://n:4646",
        "NOMAD_TOKEN": NOMAD_TOKEN,
    }
    run.assert_no_secret_logged()


async def test_destroy_missing_job_and_failure(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad", Rule(("job", "stop"), stderr='No job(s) with prefix or ID "web" found\n', exit_code=1))
    await nomad_pack().destroy(run.ctx)  # already gone: fine
    assert "does not exist" in run.text
    fake_bin.add("nomad", Rule(("job", "stop"), stderr="Error: 403 Permission denied\n", exit_code=1))
    with pytest.raises(PluginError, match=r"^nomad job stop failed \(exit 1\)$"):
        await nomad_pack(nomad_token=NOMAD_TOKEN).destroy(run.ctx)
    with pytest.raises(PluginError, match="invalid deployment_name '-purge'"):
        await nomad_pack(deployment_name="-purge").destroy(run.ctx)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("running", Status("running", "running")),
        ("dead", Status("stopped", "dead")),
        ("pending", Status("unknown", "pending")),
    ],
)
async def test_status(run: Run, fake_bin: FakeBin, status: str, expected: Status) -> None:
    fake_bin.add("nomad", Rule(("job", "status"), stdout=NOMAD_STATUS.format(job="web", status=status)))
    assert await nomad_pack(nomad_token=NOMAD_TOKEN).status(run.ctx) == expected
    (call,) = fake_bin.calls()
    assert call.argv == ["nomad", "job", "status", "web"]
    assert call.env_changes()["NOMAD_TOKEN"] == NOMAD_TOKEN
    run.assert_no_secret_logged()


async def test_status_not_found_and_failure(run: Run, fake_bin: FakeBin) -> None:
    fake_bin.add("nomad", Rule(("job", "status"), stderr='No job(s) with prefix or ID "web" found\n', exit_code=1))
    assert await nomad_pack().status(run.ctx) == Status("unknown", "job not found")
    fake_bin.add("nomad", Rule(("job", "status"), stderr="connection refused\n", exit_code=1))
    with pytest.raises(PluginError, match=r"^nomad job status failed \(exit 1\)$"):
        await nomad_pack().status(run.ctx)


def test_parse_job_status_takes_the_job_line() -> None:
    # The "Latest Deployment" section has its own "Status = successful": the job's line comes first.
    assert parse_job_status(NOMAD_STATUS.format(job="w", status="dead")) == Status("stopped", "dead")
    assert parse_job_status("garbage") == Status("unknown", "no status in nomad's output")
    assert parse_job_status("Status = weird") == Status("unknown", "weird")


# -- the embedded pack's schema ----------------------------------------------------------------------


def test_embedded_pack_defaults_fit_their_types() -> None:
    import hcl2

    pack = embedded_pack_dir()
    variables = load_variables(pack)
    raw = hcl2.loads((pack / "variables.hcl").read_text(), serialization_options=hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    ))  # fmt: skip
    defaults = {name: body["default"] for block in raw["variable"] for name, body in block.items() if "default" in body}
    assert vars_problems({"job_name": "j", "image": "i", **defaults}, variables) == []
    assert {name for name, v in variables.items() if v.required} == set()  # all defaulted, as the original's


def test_template_uses_only_declared_variables() -> None:
    pack = embedded_pack_dir()
    template = (pack / "templates" / "cloudstation.nomad.tpl").read_text()
    used = set(re.findall(r'var "([A-Za-z_][A-Za-z0-9_]*)', template))
    declared = set(load_variables(pack))
    assert used <= declared
    # declared for compatibility with the original pack, unused by its job (as in the original)
    unused = {"health_check", "tcp_health_check", "has_vault_policies", "consul_service_port", "useGpu"}
    unused |= {"secret_path", "uses_kv_engine", "owner_uses_kv_engine", "restart_attempts", "restart_mode"}
    assert declared - used == unused


def test_type_parser_and_checker() -> None:
    spec = parse_type("${map(list(object({a = number, b = tuple([string, bool])})))}")
    assert str(spec) == "map(list(object({a = number, b = tuple([string, bool])})))"
    variables = {"v": load_variables(embedded_pack_dir())["network"]}
    good = [
        {
            "name": "http",
            "port": 80,
            "type": "http",
            "public": False,
            "domain": "",
            "custom_domain": "",
            "has_health_check": "",
            "health_check": {"type": "none", "path": "", "interval": "", "timeout": "", "port": 80},
        }
    ]
    assert vars_problems({"network": good}, {"network": variables["v"]}) == []
    bad = [{**good[0], "port": True, "health_check": {"type": "tcp"}, "extra": 1}]
    problems = vars_problems({"network": bad}, {"network": variables["v"]})
    assert "network[0]: unknown attribute 'extra'" in problems
    assert "network[0].port: must be a number" in problems
    assert "network[0].health_check: missing attribute 'path'" in problems


def test_vars_file_round_trip_through_the_writer(tmp_path: Path) -> None:
    values: dict[str, Any] = {
        "job_name": NASTY,
        "image": "i:1",
        "env_vars": [{"key": "A", "value": NASTY}],
        "args": [NASTY, "x"],
    }
    path = tmp_path / "vars.hcl"
    path.write_text(hclwriter.dumps(values))
    assert read_vars_file(path) == values
    validate_pack_vars(read_vars_file(path))

"""``csdocker`` / ``docker`` against a real engine and a real registry (no fake).

Two set-ups, each test run in both where it applies:

- ``docker-cli``: Docker's own CLI (28.x, no buildx) talking to podman's Docker-compatible API on a
  private socket, with ``DOCKER_BUILDKIT=1`` inherited (the trap of the issue: it must build anyway);
- ``podman``: no ``docker`` on PATH at all, so the plugin picks ``podman`` itself.

The registry is ``docker-registry`` with htpasswd auth whose password is a canary. The tools are reached
through pass-through wrappers that record every argv (:class:`tests.plugins.engine_kit.Recorder`).
Images are ``FROM scratch`` (nothing comes from the internet).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest

from cloudstation.events.buildlog import BuildLog, LogLine
from cloudstation.events.identity import DeploymentRef
from cloudstation.plugins.base import Artifact, PluginContext, PluginError
from cloudstation.plugins.builtin.docker import CsDocker, Docker
from cloudstation.redaction import Redactor
from tests.plugins import engine_kit
from tests.plugins.engine_kit import LABEL, LocalRegistry, PodmanService, Recorder

local_registry = engine_kit.local_registry  # the fixtures
podman_service = engine_kit.podman_service

ENGINES = ("docker-cli", "podman")
WRONG_PASSWORD = "CANARY-wrongpw-5d1e7a"


def dockerfile(*lines: str) -> str:
    return "\n".join(["FROM scratch", "COPY hello.txt /hello.txt", *lines, f"LABEL {LABEL}", ""])


@dataclass
class Rig:
    """A plugin context over a real log stream, the engine's env, and the argv recorder."""

    ctx: PluginContext
    recorder: Recorder
    engine: str
    env: dict[str, str]
    lines: list[LogLine] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(line.content for line in self.lines)

    def image(self, prefix: str = "cs-test") -> tuple[str, str]:
        """A fresh (repository, tag) in the registry's namespace."""
        return f"{prefix}/web-{secrets.token_hex(3)}", "v1"


@pytest.fixture(params=ENGINES)
def rig(
    request: pytest.FixtureRequest, tmp_path: Path, podman_service: PodmanService, local_registry: LocalRegistry
) -> Iterator[Rig]:
    engine: str = request.param
    podman = engine_kit.require("podman")["podman"]
    tools = {"podman": podman} if engine == "podman" else {"docker": engine_kit.docker_cli(), "podman": podman}
    recorder = Recorder.make(tmp_path / "tools", tools)
    env = {"PATH": recorder.path(), "HOME": str(tmp_path / "home")}
    if engine == "docker-cli":
        env |= {**podman_service.env, "DOCKER_BUILDKIT": "1"}  # inherited BuildKit=1 must not break the build
    app = tmp_path / "app"
    app.mkdir()
    (app / "hello.txt").write_text("hello from cs\n")
    lines: list[LogLine] = []
    log = BuildLog(None, DeploymentRef("dep-real", 1), echo=lines.append, redactor=Redactor(()))
    ctx = PluginContext(project="demo", app="web", app_path=app, state_dir=tmp_path / "state", log=log, env=env)
    yield Rig(ctx, recorder, engine, env, lines)


def write_dockerfile(rig: Rig, text: str, name: str = "Dockerfile") -> None:
    (rig.ctx.app_path / name).write_text(text)


def registry_plugin(registry: LocalRegistry, repo: str, tag: str, *, password: str | None = None) -> Docker:
    fields = {
        "image": f"{registry.host}/{repo}",
        "tag": tag,
        "username": registry.username,
        "password": registry.password if password is None else password,
        "insecure": True,
    }
    return Docker(msgspec.convert(fields, Docker.Config))


def run_cli(rig: Rig, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run the rig's own CLI (docker or podman) directly, for the test's checks; its stdout."""
    cli = "podman" if rig.engine == "podman" else "docker"
    proc = subprocess.run(
        [cli, *args],
        env={**os.environ, **rig.env, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{cli} {args[0]}: {proc.stderr}"
    return proc.stdout


def secret_forms(password: str, username: str) -> list[str]:
    """The password, and the base64 ``user:password`` a docker/podman auth file would hold."""
    return [password, base64.b64encode(f"{username}:{password}".encode()).decode()]


def assert_nowhere(rig: Rig, tmp_path: Path, forms: list[str], *extra: str) -> None:
    """No form of the secret in a logged line, a recorded argv, ``extra`` texts, or any file under tmp_path."""
    argvs = [" ".join(argv) for argv in rig.recorder.argvs()]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    # where docker / podman keep logins by default (the test's HOME is under tmp_path)
    files += [
        p
        for p in (Path(f"/run/containers/{os.getuid()}/auth.json"), Path.home() / ".docker/config.json")
        if p.is_file()
    ]
    for secret in forms:
        assert secret not in rig.text
        assert all(secret not in argv for argv in argvs)
        assert all(secret not in text for text in extra)
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


async def test_build_inspect_tag_push_pull_by_digest(rig: Rig, local_registry: LocalRegistry, tmp_path: Path) -> None:
    write_dockerfile(rig, dockerfile("EXPOSE 9090 8080/tcp", "ENV PORT=3000"))
    repo, tag = rig.image()
    local = f"local-{secrets.token_hex(3)}"
    built = await CsDocker(msgspec.convert({"name": local, "tag": "dev"}, CsDocker.Config)).build(rig.ctx)
    plugin = registry_plugin(local_registry, repo, tag)

    # the build: the engine's config gives the ports (EXPOSE wins over PORT=)
    assert built.kind == "image" and built.ref == f"{local}:dev"
    assert built.ports == (8080, 9090)
    assert built.metadata["engine"] == ("podman" if rig.engine == "podman" else "docker")
    assert re.fullmatch(r"(sha256:)?[0-9a-f]{64}", built.metadata["image_id"])
    if rig.engine == "docker-cli":
        assert "docker on Podman Engine" in rig.text and "the classic builder (DOCKER_BUILDKIT=0)" in rig.text
    else:
        assert "podman, building with podman build (Buildah; no BuildKit); docker is not installed" in rig.text
    assert "STEP 2/" in rig.text  # the engine's own output was streamed into the log

    # tag + push with credentials: the digest is the registry's
    pushed = await plugin.push(rig.ctx, built)
    target = f"{local_registry.host}/{repo}:{tag}"
    held = local_registry.digest(repo, tag)
    assert held.startswith("sha256:")
    assert pushed == Artifact(kind="image", ref=target, digest=held, ports=(8080, 9090), metadata=pushed.metadata)
    source = "digest file" if rig.engine == "podman" else "registry"
    assert pushed.metadata["digest_source"] == source
    assert f"pushed {target} (digest {held}, from the {source})" in rig.text

    cli = "podman" if rig.engine == "podman" else "docker"
    assert [argv[:2] for argv in rig.recorder.argvs() if argv[1] in ("login", "tag", "push")] == [
        [cli, "login"],
        [cli, "tag"],
        [cli, "push"],
    ]
    login = next(argv for argv in rig.recorder.argvs() if argv[1] == "login")
    assert login[-4:] == [local_registry.host, "-u", local_registry.username, "--password-stdin"]
    assert not list((rig.ctx.state_dir / "plugins" / "docker").rglob("push-*"))  # the private login dir is gone
    assert_nowhere(rig, tmp_path, secret_forms(local_registry.password, local_registry.username), repr(pushed))

    # pull it back by digest, after removing every local copy
    run_cli(rig, "rmi", "-f", built.metadata["image_id"])
    pull_env = {"DOCKER_CONFIG": str(tmp_path / "pull"), "REGISTRY_AUTH_FILE": str(tmp_path / "pull" / "auth.json")}
    tls = ["--tls-verify=false"] if rig.engine == "podman" else []
    login_args = ["login", *tls, local_registry.host, "-u", local_registry.username, "--password-stdin"]
    run_cli(rig, *login_args, stdin=local_registry.password, env=pull_env)
    by_digest = f"{local_registry.host}/{repo}@{held}"
    run_cli(rig, "pull", *tls, by_digest, env=pull_env)
    inspected = run_cli(rig, "image", "inspect", by_digest)
    assert '"8080/tcp"' in inspected and '"9090/tcp"' in inspected and held in inspected
    shutil.rmtree(tmp_path / "pull")


async def test_ports_from_env_port_when_nothing_is_exposed(rig: Rig) -> None:
    write_dockerfile(rig, dockerfile("ENV PORT=5000"))
    only_env = await CsDocker(msgspec.convert({"name": "envport"}, CsDocker.Config)).build(rig.ctx)
    assert only_env.ports == (5000,)
    assert "exposes no port; PORT=5000 in its environment" in rig.text

    write_dockerfile(rig, dockerfile(), name="Plain.Dockerfile")
    plain = await CsDocker(msgspec.convert({"name": "plain", "dockerfile": "Plain.Dockerfile"}, CsDocker.Config)).build(
        rig.ctx
    )
    assert plain.ports == ()
    assert "exposes no port and sets no PORT" in rig.text
    cli = "podman" if rig.engine == "podman" else "docker"
    inspects = [argv for argv in rig.recorder.argvs() if argv[1:3] == ["image", "inspect"]]
    assert inspects == [[cli, "image", "inspect", "envport:latest"], [cli, "image", "inspect", "plain:latest"]]
    run_cli(rig, "rmi", "-f", only_env.metadata["image_id"], plain.metadata["image_id"])


async def test_wrong_password_fails_in_one_line_and_leaks_nowhere(
    rig: Rig, local_registry: LocalRegistry, tmp_path: Path
) -> None:
    write_dockerfile(rig, dockerfile())
    repo, tag = rig.image()
    plugin = registry_plugin(local_registry, repo, tag, password=WRONG_PASSWORD)
    built = await plugin.build(rig.ctx)
    with pytest.raises(PluginError) as caught:
        await plugin.push(rig.ctx, built)
    message = str(caught.value)
    cli = "podman" if rig.engine == "podman" else "docker"
    assert re.fullmatch(rf"{cli} login to {re.escape(local_registry.host)} failed \(exit \d+\): .*\S", message)
    assert "\n" not in message and re.search(r"401|unauthorized|invalid username/password", message, re.I), message
    assert local_registry.digest(repo, tag) == ""  # nothing was pushed
    assert [argv[1] for argv in rig.recorder.argvs()][-1] == "login"  # no tag, no push after the refusal
    assert not list((rig.ctx.state_dir / "plugins" / "docker").rglob("push-*"))
    assert_nowhere(rig, tmp_path, secret_forms(WRONG_PASSWORD, local_registry.username), message)
    run_cli(rig, "rmi", "-f", built.metadata["image_id"])


async def test_bad_dockerfile_streams_the_build_and_fails_with_the_engines_message(rig: Rig) -> None:
    write_dockerfile(rig, "FROM scratch\nCOPY missing-file.txt /x\n")
    with pytest.raises(PluginError) as caught:
        await CsDocker(msgspec.convert({"name": "broken"}, CsDocker.Config)).build(rig.ctx)
    message = str(caught.value)
    cli = "podman" if rig.engine == "podman" else "docker"
    assert re.match(rf"{cli} build failed \(exit \d+\): ", message), message
    assert "missing-file.txt" in message and "no such file or directory" in message, message
    assert "STEP 2/2: COPY missing-file.txt /x" in rig.text  # the engine's output reached the log first
    assert message.split(": ", 1)[1] in rig.text  # the message is the engine's own last line

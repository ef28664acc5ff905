"""``csdocker`` and ``docker``: build an image with Docker's CLI or podman; ``docker`` also pushes it.

The engine is detected first (:mod:`._engine`): Docker's CLI with BuildKit only where the engine has
it (a Docker Engine, and the CLI has buildx) and the Dockerfile needs it, else the classic builder
(podman's Docker-compatible API has no BuildKit), or ``podman`` itself when no ``docker`` reaches an
engine. ``cli = "docker" | "podman"``
forces one. The log says which.

Build (both plugins), in the build context directory ``<app path>/<context>``::

    CLI build -t IMAGE:TAG -f DOCKERFILE [--platform P] [--target T]
              [--build-arg K=V ...] [--build-arg NAME ...] .

with ``DOCKER_BUILDKIT=1`` or ``0`` in the docker CLI's environment. ``build_args`` values are plain
configuration and appear in argv; ``env`` values may be secrets, so they are passed **by name only**
(``--build-arg NAME``: the CLI reads the value from its own environment, where we put it).
``dockerfile`` is relative to the context directory (where the CLI runs). A failed build fails with
the engine's own last line. Then ``CLI image inspect IMAGE:TAG`` (JSON) gives the artifact's ports:
the exposed ones, else ``PORT=`` from the image's env.

Push (``docker`` as a registry), in order:

1. ``CLI login [SERVER] -u USERNAME --password-stdin``: the password goes to stdin, never to argv,
   the environment or the log (it is added to the log's redactor too). The CLI stores the login in a
   private directory (``DOCKER_CONFIG`` / ``REGISTRY_AUTH_FILE``, mode 0700, under the plugin's state)
   that is deleted when the push ends. Skipped when neither ``username`` nor ``password`` is set (the
   CLI's stored credentials, or an open registry, are used); only one of the two set is an error,
   reported before anything runs. A refused login fails with the CLI's own one-line reason.
2. ``CLI tag SOURCE TARGET`` then ``CLI push TARGET`` (podman: ``--digestfile``).
3. The digest: podman's digest file, else the registry's own answer for the pushed tag
   (:mod:`._registry`). A digest that cannot be read is a warning in the log (and
   ``metadata["digest_warning"]``), never a silent empty field.

``TARGET`` is ``image`` (or the built image's repository) prefixed with ``registry`` unless it already
names a registry host, tagged with ``tag`` (or the built tag, or ``latest``). ``insecure = true``
allows plain HTTP to the registry (podman: ``--tls-verify=false``; a Docker daemon needs its own
``insecure-registries`` setting); loopback registries are reached over HTTP anyway, as Docker does.

The helpers shared with the railpack, nixpacks and nomad-pack plugins (the tool's environment, flags,
image references) are in :mod:`._shell`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import msgspec

from cloudstation.plugins.base import Artifact, Plugin, PluginConfig, PluginContext, PluginError
from cloudstation.plugins.builtin._engine import (
    CLIS,
    buildkit_features,
    detect_engine,
    image_config,
    last_line,
    which,
)
from cloudstation.plugins.builtin._registry import DigestError, manifest_digest
from cloudstation.plugins.builtin._shell import (
    REF,
    build_context,
    image_ref,
    name_flags,
    option,
    pair_flags,
    split_ref,
    tool_env,
)
from cloudstation.redaction import MASK


class DockerBuildConfig(PluginConfig, frozen=True):
    """``csdocker``'s attributes (and the build half of ``docker``'s)."""

    image: str = ""  # image repository to build, e.g. "reg.example.com/team/web"; wins over name
    name: str = ""  # short image name, used when image is empty; the app name when both are
    tag: str = ""  # "latest" when empty (a registry push then keeps the built tag)
    dockerfile: str = "Dockerfile"  # relative to the context directory
    context: str = "."  # relative to the app path
    build_args: dict[str, str] = msgspec.field(default_factory=dict)  # --build-arg K=V (visible in argv)
    env: dict[str, str] = msgspec.field(default_factory=dict)  # --build-arg NAME, value via environment
    platform: str = ""  # --platform, e.g. "linux/amd64"
    target: str = ""  # --target stage
    cli: str = ""  # "docker" or "podman"; detected when empty

    def __post_init__(self) -> None:
        if self.cli not in ("", *CLIS):
            raise ValueError(f"cli must be 'docker', 'podman' or empty, not {self.cli!r}")


class DockerConfig(DockerBuildConfig, frozen=True):
    """``docker``'s attributes: the build ones plus the registry ones."""

    registry: str = ""  # registry server, e.g. "reg.example.com" (docker login's SERVER)
    username: str = ""
    password: str = ""  # sent to `docker login --password-stdin` on stdin only
    insecure: bool = False  # the registry may be reached over plain HTTP

    def __repr__(self) -> str:
        secret = MASK if self.password else ""
        return f"DockerConfig(image={self.image!r}, tag={self.tag!r}, registry={self.registry!r}, password={secret!r})"


class CsDocker(Plugin):
    """Builds an image from a Dockerfile with ``docker build`` (BuildKit where needed and available) or podman."""

    name: ClassVar[str] = "csdocker"
    Config: ClassVar[type[PluginConfig]] = DockerBuildConfig
    description: ClassVar[str] = "Build from a Dockerfile with `docker build` (BuildKit where needed) or podman."

    config: DockerBuildConfig

    async def build(self, ctx: PluginContext) -> Artifact:
        return await docker_build(ctx, self.config, builder=self.name)


class Docker(Plugin):
    """Builds like ``csdocker`` and pushes with ``login`` / ``tag`` / ``push``; the digest from the registry."""

    name: ClassVar[str] = "docker"
    Config: ClassVar[type[PluginConfig]] = DockerConfig
    description: ClassVar[str] = "Build with `docker build`; push with `docker login --password-stdin`, tag, push."

    config: DockerConfig

    async def build(self, ctx: PluginContext) -> Artifact:
        return await docker_build(ctx, self.config, builder=self.name)

    async def push(self, ctx: PluginContext, artifact: Artifact) -> Artifact:
        cfg = self.config
        if artifact.kind != "image":
            raise PluginError(f"docker push needs an image artifact, got a {artifact.kind}")
        if cfg.username and not cfg.password:
            raise PluginError("docker push: username is set but password is empty (set both, or neither)")
        if cfg.password and not cfg.username:
            raise PluginError("docker push: password is set but username is empty (set both, or neither)")
        if cfg.password:
            ctx.add_secret(cfg.password)
        server = _server(cfg.registry)
        source_repo, _, source_tag = split_ref(artifact.ref)
        repo = cfg.image or source_repo
        if server and _registry_host(repo) is None:
            repo = f"{server}/{repo}"
        target = image_ref(repo, cfg.tag or source_tag)
        login_server = server or (_registry_host(repo) or "")
        env = tool_env(ctx)
        cli = await _push_cli(ctx, cfg, artifact, env)
        tls = ["--tls-verify=false"] if cli == "podman" and cfg.insecure else []
        with _private_dir(ctx, self.name) as private:
            if cfg.username:
                env = {**env, "DOCKER_CONFIG": str(private), "REGISTRY_AUTH_FILE": str(private / "auth.json")}
                login = [cli, "login", *tls, *([login_server] if login_server else []), "-u", cfg.username]
                ctx.say(f"{self.name}: logging in to {login_server or 'Docker Hub'} as {cfg.username}")
                what = f"{cli} login to {login_server or 'Docker Hub'}"
                await _step(ctx, [*login, "--password-stdin"], what, env=env, stdin=cfg.password.encode())
            await _step(ctx, [cli, "tag", artifact.ref, target], f"{cli} tag", env=env)
            digest_file = private / "digest"
            digest_flag = ["--digestfile", str(digest_file)] if cli == "podman" else []
            await _step(ctx, [cli, "push", *tls, *digest_flag, target], f"{cli} push of {target}", env=env)
            digest, source, problem = "", "digest file", ""
            if digest_flag:
                digest = _read_digest_file(digest_file)
            if not digest:
                source = "registry"
                try:
                    digest = await asyncio.to_thread(
                        manifest_digest, target, username=cfg.username, password=cfg.password, insecure=cfg.insecure
                    )
                except DigestError as exc:
                    problem = str(exc)
        metadata = {**artifact.metadata, "registry": login_server, "source": artifact.ref}
        if digest:
            ctx.say(f"{self.name}: pushed {target} (digest {digest}, from the {source})")
            metadata["digest_source"] = source
        else:
            ctx.say(f"warning: {self.name}: pushed {target}, but its digest is unknown: {problem}")
            metadata["digest_warning"] = problem
        return Artifact(kind="image", ref=target, digest=digest, ports=artifact.ports, metadata=metadata)


async def docker_build(ctx: PluginContext, cfg: DockerBuildConfig, *, builder: str) -> Artifact:
    """Build ``cfg``'s image with the detected engine; the image artifact ``name:tag`` with its ports."""
    ref = image_ref(cfg.image or cfg.name or ctx.app, cfg.tag)
    context_dir = build_context(ctx, cfg.context)
    dockerfile = context_dir / cfg.dockerfile
    if not dockerfile.is_file():
        raise PluginError(f"{builder}: no Dockerfile at {cfg.dockerfile!r} in the build context {cfg.context!r}")
    flags = option("--platform", cfg.platform) + option("--target", cfg.target)
    flags += pair_flags("--build-arg", cfg.build_args)
    flags += name_flags("--build-arg", cfg.env, tool="docker")
    env = tool_env(ctx, cfg.env)
    needs_buildkit = buildkit_features(dockerfile)
    engine = await detect_engine(env, cfg.cli, needs_buildkit=needs_buildkit)
    ctx.say(f"{builder}: engine: {engine.describe()}")
    if needs_buildkit and not engine.buildkit:
        ctx.say(
            f"warning: {builder}: {cfg.dockerfile} uses BuildKit features (a syntax directive, RUN --mount, "
            "COPY --link or a heredoc) and this engine builds without BuildKit"
        )
    argv = [engine.cli, "build", "-t", ref, "-f", cfg.dockerfile, *flags, "."]
    ctx.say(f"{builder}: building {ref}")
    await _step(ctx, argv, f"{engine.cli} build", env={**env, **engine.build_env()}, cwd=context_dir)
    config = await image_config(ctx, ref, cli=engine.cli, env=env)
    repo, _, tag = split_ref(ref)
    metadata = {"builder": builder, "image": repo, "tag": tag, "engine": engine.cli}
    if config is not None and config.image_id:
        metadata["image_id"] = config.image_id
    ports = config.ports if config is not None else ()
    return Artifact(kind="image", ref=ref, ports=ports, metadata=metadata)


async def _push_cli(ctx: PluginContext, cfg: DockerConfig, artifact: Artifact, env: Mapping[str, str]) -> str:
    """The CLI that holds the image: the registry's ``cli``, else the builder's engine, else detected."""
    if cfg.cli:
        return (await detect_engine(env, cfg.cli)).cli
    built_with = artifact.metadata.get("engine", "")
    if built_with in CLIS and which(built_with, env) is not None:
        return built_with
    engine = await detect_engine(env)
    ctx.say(f"docker: pushing with {engine.cli}" + (f" ({engine.note})" if engine.is_podman and engine.note else ""))
    return engine.cli


@contextlib.contextmanager
def _private_dir(ctx: PluginContext, plugin: str) -> Iterator[Path]:
    """A mode-0700 directory under the plugin's state for one push (login, digest file); then deleted."""
    path = Path(tempfile.mkdtemp(prefix="push-", dir=ctx.plugin_state(plugin)))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _read_digest_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return text if re.fullmatch(r"sha256:[0-9a-f]{64}", text) else ""


class _Tail(list[str]):
    """A capture list that keeps only the last lines (a build may print a great many)."""

    def append(self, line: str) -> None:
        super().append(line)
        if len(self) > 64:
            del self[:32]


async def _step(
    ctx: PluginContext,
    argv: Sequence[str],
    what: str,
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> None:
    """Run one step through the log; a failure is ``"<what> failed (exit N): <the tool's last line>"``."""
    lines = _Tail()
    rc = await ctx.run(argv, env=env, cwd=cwd, stdin=stdin, capture=lines)
    if rc != 0:
        reason = last_line(lines)
        raise PluginError(f"{what} failed (exit {rc})" + (f": {reason}" if reason else ""))


def _server(registry: str) -> str:
    """A registry setting as a host (``https://reg.io/`` → ``reg.io``)."""
    server = registry.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if server and not REF.fullmatch(server):
        raise PluginError(f"invalid registry server {registry!r}")
    return server


def _registry_host(repository: str) -> str | None:
    """The registry host a repository names (``reg.io/web`` → ``reg.io``), or None (Docker Hub)."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None

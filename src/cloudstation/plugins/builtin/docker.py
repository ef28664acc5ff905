"""``csdocker`` and ``docker``: build an image with ``docker build``; ``docker`` also pushes it.

Build (both plugins), in the build context directory ``<app path>/<context>``::

    docker build -t IMAGE:TAG -f DOCKERFILE [--platform P] [--target T]
                 [--build-arg K=V ...] [--build-arg NAME ...] .

with ``DOCKER_BUILDKIT=1`` in the child's environment. ``build_args`` values are plain configuration and
appear in argv; ``env`` values may be secrets, so they are passed **by name only** (``--build-arg NAME``:
docker reads the value from its own environment, where we put it). ``dockerfile`` is relative to the
context directory, like the original's.

Push (``docker`` as a registry), in order:

1. ``docker login [SERVER] -u USERNAME --password-stdin``: the password goes to stdin, never to argv,
   the environment or the log (it is added to the log's redactor too). Skipped when neither ``username``
   nor ``password`` is set (the docker client's stored credentials, or an open registry, are used);
   only one of the two set is an error, reported before anything runs.
2. ``docker tag SOURCE TARGET`` then ``docker push TARGET``; the digest is read from push's
   ``TAG: digest: sha256:<64 hex> size: N`` line.

``TARGET`` is ``image`` (or the built image's repository) prefixed with ``registry`` unless it already
names a registry host, tagged with ``tag`` (or the built tag, or ``latest``).

The helpers at the bottom (child environment, name-only env flags, output capture) are shared with the
railpack, nixpacks and nomad-pack plugins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import msgspec

from cloudstation.plugins.base import Artifact, Plugin, PluginConfig, PluginContext, PluginError

DEFAULT_TAG = "latest"

_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ENV = frozenset({"PATH", "HOME", "USER", "SHELL", "TMPDIR", "PWD", "LANG"})
_RESERVED_ENV_PREFIXES = ("DOCKER_", "BUILDKIT_", "NOMAD_", "LD_", "LC_", "XDG_", "GIT_", "SSL_CERT_")
_PUSH_DIGEST = re.compile(r"(?:^|\s)(?P<tag>[^\s:]+): digest: (?P<digest>sha256:[0-9a-f]{64}) size: \d+")


class DockerBuildConfig(PluginConfig, frozen=True):
    """``csdocker``'s attributes (and the build half of ``docker``'s)."""

    image: str = ""  # image repository to build, e.g. "reg.example.com/team/web"; wins over name
    name: str = ""  # short image name (the original's attribute); the app name when both are empty
    tag: str = ""  # "latest" when empty (a registry push then keeps the built tag)
    dockerfile: str = "Dockerfile"  # relative to the context directory
    context: str = "."  # relative to the app path
    build_args: dict[str, str] = msgspec.field(default_factory=dict)  # --build-arg K=V (visible in argv)
    env: dict[str, str] = msgspec.field(default_factory=dict)  # --build-arg NAME, value via environment
    platform: str = ""  # --platform, e.g. "linux/amd64"
    target: str = ""  # --target stage


class DockerConfig(DockerBuildConfig, frozen=True):
    """``docker``'s attributes: the build ones plus the registry ones."""

    registry: str = ""  # registry server, e.g. "reg.example.com" (docker login's SERVER)
    username: str = ""
    password: str = ""  # sent to `docker login --password-stdin` on stdin only

    def __repr__(self) -> str:
        secret = "***" if self.password else ""
        return f"DockerConfig(image={self.image!r}, tag={self.tag!r}, registry={self.registry!r}, password={secret!r})"


class CsDocker(Plugin):
    """Builds an image from a Dockerfile with ``docker build`` (BuildKit)."""

    name: ClassVar[str] = "csdocker"
    Config: ClassVar[type[PluginConfig]] = DockerBuildConfig
    description: ClassVar[str] = "Build an image from a Dockerfile with `docker build` (BuildKit)."

    config: DockerBuildConfig

    async def build(self, ctx: PluginContext) -> Artifact:
        return await docker_build(ctx, self.config, builder=self.name)


class Docker(Plugin):
    """Builds with ``docker build`` and pushes with ``docker login`` / ``tag`` / ``push``."""

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
        server = _server(cfg.registry)
        source_repo, _, source_tag = split_ref(artifact.ref)
        repo = cfg.image or source_repo
        if server and _registry_host(repo) is None:
            repo = f"{server}/{repo}"
        target = image_ref(repo, cfg.tag or source_tag)
        login_server = server or (_registry_host(repo) or "")
        env = child_env(ctx)
        if cfg.username:
            ctx.log.redactor.add(cfg.password)
            login = ["docker", "login", *([login_server] if login_server else []), "-u", cfg.username]
            ctx.say(f"docker: logging in to {login_server or 'Docker Hub'} as {cfg.username}")
            await ctx.check([*login, "--password-stdin"], what="docker login", env=env, stdin=cfg.password.encode())
        await ctx.check(["docker", "tag", artifact.ref, target], what="docker tag", env=env)
        rc, lines = await run_capturing(ctx, ["docker", "push", target], env=env)
        if rc != 0:
            raise PluginError(f"docker push failed (exit {rc})")
        digest = parse_push_digest(lines, split_ref(target)[2])
        if not digest:
            ctx.say(f"docker: pushed {target}, but its output named no digest")
        metadata = {**artifact.metadata, "registry": login_server, "source": artifact.ref}
        return Artifact(kind="image", ref=target, digest=digest, ports=artifact.ports, metadata=metadata)


async def docker_build(ctx: PluginContext, cfg: DockerBuildConfig, *, builder: str) -> Artifact:
    """Run ``docker build`` for ``cfg``; the image artifact ``name:tag``."""
    ref = image_ref(cfg.image or cfg.name or ctx.app, cfg.tag)
    context_dir = build_context(ctx, cfg.context)
    if not (context_dir / cfg.dockerfile).is_file():
        raise PluginError(f"{builder}: no Dockerfile at {cfg.dockerfile!r} in the build context {cfg.context!r}")
    argv = ["docker", "build", "-t", ref, "-f", cfg.dockerfile]
    argv += option("--platform", cfg.platform) + option("--target", cfg.target)
    argv += pair_flags("--build-arg", cfg.build_args)
    argv += name_flags("--build-arg", cfg.env, tool="docker")
    argv.append(".")
    env = child_env(ctx, {**cfg.env, "DOCKER_BUILDKIT": "1"})
    ctx.say(f"{builder}: building {ref}")
    await ctx.check(argv, what="docker build", env=env, cwd=context_dir)
    repo, _, tag = split_ref(ref)
    return Artifact(kind="image", ref=ref, metadata={"builder": builder, "image": repo, "tag": tag})


# -- shared helpers ------------------------------------------------------------------------------------


def child_env(ctx: PluginContext, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's environment: this process's, then ``ctx.env`` over it, then ``extra`` over both."""
    return {**os.environ, **ctx.env, **(extra or {})}


def build_context(ctx: PluginContext, context: str) -> Path:
    """``<app path>/<context>``, which must be a directory (checked before anything runs)."""
    path = ctx.app_path / context
    if not path.is_dir():
        raise PluginError(f"build context {context!r} is not a directory under the app path")
    return path


def image_ref(repository: str, tag: str) -> str:
    """``repository:tag``, both checked (a leading ``-`` would read as an option)."""
    tag = tag or DEFAULT_TAG
    if not _REF.fullmatch(repository):
        raise PluginError(f"invalid image name {repository!r}")
    if not _TAG.fullmatch(tag):
        raise PluginError(f"invalid image tag {tag!r}")
    return f"{repository}:{tag}"


def split_ref(ref: str) -> tuple[str, str, str]:
    """``(repository, ":", tag)``; ``tag`` is ``""`` when the ref has none (a port is not a tag)."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "", ""
    return repo, sep, tag


def option(flag: str, value: str) -> list[str]:
    """``[flag, value]`` when ``value`` is set, else nothing."""
    return [flag, value] if value else []


def pair_flags(flag: str, values: Mapping[str, str]) -> list[str]:
    """``flag K=V`` for each item (the values are visible in argv: never use it for secrets)."""
    out: list[str] = []
    for key, value in values.items():
        if not key or "=" in key:
            raise PluginError(f"invalid {flag} name {key!r}")
        out += [flag, f"{key}={value}"]
    return out


def name_flags(flag: str, values: Mapping[str, str], *, tool: str) -> list[str]:
    """``flag NAME`` for each item: the tool reads the value from its environment (see :func:`child_env`)."""
    out: list[str] = []
    for key in values:
        if not _ENV_NAME.fullmatch(key):
            raise PluginError(f"invalid build env name {key!r} (letters, digits and _ only)")
        if key in _RESERVED_ENV or key.startswith(_RESERVED_ENV_PREFIXES):
            raise PluginError(f"build env name {key!r} would change the {tool} client's own environment")
        out += [flag, key]
    return out


def parse_push_digest(lines: Sequence[str], tag: str = "") -> str:
    """The ``sha256:...`` digest from ``docker push`` output (the line for ``tag`` when there are several)."""
    found = ""
    for line in lines:
        match = _PUSH_DIGEST.search(line)
        if match is None:
            continue
        if not tag or match.group("tag") == tag:
            return match.group("digest")
        found = found or match.group("digest")
    return found


async def run_capturing(
    ctx: PluginContext,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: bytes | None = None,
) -> tuple[int, list[str]]:
    """:meth:`PluginContext.run`, also returning the (redacted) lines the command printed."""
    lines: list[str] = []
    rc = await ctx.run(argv, env=env, cwd=cwd, stdin=stdin, capture=lines)
    return rc, lines


def _server(registry: str) -> str:
    """A registry setting as a host (``https://reg.io/`` → ``reg.io``)."""
    server = registry.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if server and not _REF.fullmatch(server):
        raise PluginError(f"invalid registry server {registry!r}")
    return server


def _registry_host(repository: str) -> str | None:
    """The registry host a repository names (``reg.io/web`` → ``reg.io``), or None (Docker Hub)."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None

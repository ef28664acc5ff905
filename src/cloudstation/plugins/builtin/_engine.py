"""The container engine behind ``csdocker`` / ``docker``: which CLI, BuildKit or not, the image config.

Platforms meet three set-ups, and :func:`detect_engine` tells them apart from what the tools define
(exit codes and JSON), never from prose:

- **Docker's CLI and a Docker Engine**: ``docker version --format '{{json .}}'`` answers with a
  ``Server`` whose components include no ``Podman Engine``. BuildKit is used only where the engine has
  it and the Dockerfile needs it (:func:`buildkit_features`: a ``# syntax=`` directive, ``RUN --mount``
  / ``--network`` / ``--security``, ``COPY --link``, a heredoc) and the CLI has its ``buildx``
  component (``docker buildx version`` exits 0): ``DOCKER_BUILDKIT=1``. Otherwise the classic builder
  (``DOCKER_BUILDKIT=0``: an inherited ``DOCKER_BUILDKIT=1`` would make a CLI without buildx fail with
  "BuildKit is enabled but the buildx component is missing").
- **Docker's CLI talking to podman's Docker-compatible API** (``podman system service``, which
  ``podman-docker`` links to ``/var/run/docker.sock``): the server is ``Podman Engine``, which has no
  BuildKit, so the classic builder is used whatever the CLI has.
- **podman alone** (many CI runners): no ``docker`` on PATH, or one that reaches no engine while
  ``podman`` is installed: ``podman build`` / ``tag`` / ``push`` (Buildah builds; no BuildKit).
  ``podman-docker``'s ``docker`` script is podman under Docker's name: it reports no ``Server``.

The image config (exposed ports, ``PORT=`` in the env) is read with ``<cli> image inspect <ref>``
(no ``--format``: the JSON array both CLIs print), as the dispatch port detection does.

Probes run quietly (their output is data, not log) through :func:`probe`, bounded in time, stopped with
their process group when cancelled, without cs's own secrets in their environment. The log gets one
line saying which engine and builder were chosen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cloudstation.plugins.base import PluginContext, PluginError
from cloudstation.processes.quiet import run_quietly

PROBE_TIMEOUT = 60.0
CLIS = ("docker", "podman")
# Dockerfile features only BuildKit (or Buildah) understands: a syntax directive, RUN --mount / --network /
# --security, COPY/ADD --link, heredocs.
_BUILDKIT_FEATURES = re.compile(
    r"^\s*#\s*syntax\s*="
    r"|^\s*RUN\s+(?:--\S+\s+)*--(?:mount|network|security)\b"
    r"|^\s*(?:COPY|ADD)\s+(?:--\S+\s+)*--link\b"
    r"|<<-?\s*[\"']?[A-Za-z_]+",
    re.I | re.M,
)


@dataclass(frozen=True)
class Engine:
    """The CLI to run and what it builds with."""

    cli: str  # argv[0]: "docker" or "podman"
    server: str = ""  # e.g. "Podman Engine 4.3.1", "Docker Engine 27.3.1"; "" when none answered
    buildkit: bool = False  # DOCKER_BUILDKIT=1 (docker CLI only)
    note: str = ""  # why, for the log

    @property
    def is_podman(self) -> bool:
        return self.cli == "podman"

    def build_env(self) -> dict[str, str]:
        """The builder switch for the child's environment (podman has none)."""
        if self.is_podman:
            return {}
        return {"DOCKER_BUILDKIT": "1" if self.buildkit else "0"}

    def describe(self) -> str:
        """One log line: the CLI, the engine and the builder."""
        if self.is_podman:
            builder = "podman build (Buildah; no BuildKit)"
        elif self.buildkit:
            builder = "BuildKit (buildx)"
        else:
            builder = "the classic builder (DOCKER_BUILDKIT=0)"
        engine = f" on {self.server}" if self.server else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.cli}{engine}, building with {builder}{note}"


@dataclass(frozen=True)
class ImageConfig:
    """What ``image inspect`` says about an image: its id, exposed ports and environment."""

    image_id: str = ""
    exposed: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports a deploy should route: ``EXPOSE`` d ones, else ``PORT=`` from the env, else none."""
        if self.exposed:
            return self.exposed
        port = self.env.get("PORT", "").strip()
        if port.isdigit() and 0 < int(port) < 65536:
            return (int(port),)
        return ()


async def probe(argv: Sequence[str], *, env: Mapping[str, str], timeout: float = PROBE_TIMEOUT) -> tuple[int, str, str]:
    """Run ``argv`` quietly: ``(exit code, stdout, stderr)``; not found is exit 127, no answer in time 124."""
    return await run_quietly(argv, env=env, timeout=timeout)


def last_line(output: str | Sequence[str]) -> str:
    """The last non-blank line of ``output`` (one line, at most 300 characters): a tool's own message."""
    lines = output.splitlines() if isinstance(output, str) else [p for line in output for p in line.splitlines()]
    for line in reversed(lines):
        stripped = line.strip()
        if stripped:
            return stripped if len(stripped) <= 300 else stripped[:297] + "..."
    return ""


def which(cli: str, env: Mapping[str, str]) -> str | None:
    """``cli`` on the child's PATH (``env["PATH"]``, else this process's)."""
    return shutil.which(cli, path=env.get("PATH", os.environ.get("PATH", os.defpath)))


async def detect_engine(env: Mapping[str, str], cli: str = "", *, needs_buildkit: bool = False) -> Engine:
    """The engine to build and push with; ``cli`` forces ``"docker"`` or ``"podman"``.

    BuildKit is asked for (``docker buildx version``) only when ``needs_buildkit``.
    """
    if cli and cli not in CLIS:
        raise PluginError(f"invalid cli {cli!r} (use 'docker', 'podman' or leave it empty)")
    docker, podman = which("docker", env), which("podman", env)
    if cli == "podman" or (not cli and docker is None and podman is not None):
        if podman is None:
            raise PluginError("podman is not installed (not found on PATH)")
        return Engine("podman", note="docker is not installed" if not cli else "")
    if docker is None:
        raise PluginError("docker is not installed (not found on PATH)" + ("" if cli else "; nor is podman"))
    rc, out, err = await probe(["docker", "version", "--format", "{{json .}}"], env=env)
    if rc != 0:
        reason = last_line(err) or f"`docker version` exit {rc}"
        if not cli and podman is not None:
            return Engine("podman", note=f"docker reaches no engine ({reason})")
        return Engine("docker", note=f"docker reaches no engine ({reason})")
    server = _server(out)
    if server is None:  # e.g. podman-docker's script: podman itself, under Docker's name
        return Engine("docker", note="`docker version` names no server (podman under Docker's name?)")
    if server.startswith("Podman"):
        return Engine("docker", server=server, note="podman's API has no BuildKit")
    if not needs_buildkit:
        return Engine("docker", server=server, note="nothing in the Dockerfile needs BuildKit")
    rc, _, _ = await probe(["docker", "buildx", "version"], env=env)
    if rc == 0:
        return Engine("docker", server=server, buildkit=True)
    return Engine("docker", server=server, note="the docker CLI has no buildx component")


def _server(version_json: str) -> str | None:
    """The engine ``docker version`` names (``"Podman Engine 4.3.1"``), or None when it names none."""
    try:
        doc = json.loads(version_json.strip() or "null")
    except ValueError:
        return None
    server = doc.get("Server") if isinstance(doc, dict) else None
    if not isinstance(server, dict):
        return None
    components = [c for c in server.get("Components") or [] if isinstance(c, dict)]
    names = {str(c.get("Name", "")): str(c.get("Version", "")) for c in components}
    for name, version in names.items():
        if "podman" in name.lower():
            return f"Podman Engine {version}".strip()
    return f"Docker Engine {server.get('Version') or names.get('Engine', '')}".strip()


def buildkit_features(dockerfile: Path) -> bool:
    """Whether the Dockerfile uses what only BuildKit/Buildah builds (see ``_BUILDKIT_FEATURES``)."""
    try:
        return _BUILDKIT_FEATURES.search(dockerfile.read_text(encoding="utf-8", errors="replace")) is not None
    except OSError:
        return False


def parse_image_config(inspect_json: str) -> ImageConfig:
    """``image inspect``'s JSON array → :class:`ImageConfig` (ports sorted; anything unreadable → empty)."""
    try:
        doc = json.loads(inspect_json.strip() or "null")
    except ValueError:
        return ImageConfig()
    first = doc[0] if isinstance(doc, list) and doc else doc
    if not isinstance(first, dict):
        return ImageConfig()
    config = first.get("Config") if isinstance(first.get("Config"), dict) else {}
    assert isinstance(config, dict)
    ports: set[int] = set()
    exposed = config.get("ExposedPorts")
    for key in exposed if isinstance(exposed, dict) else {}:
        number = str(key).split("/", 1)[0]
        if number.isdigit() and 0 < int(number) < 65536:
            ports.add(int(number))
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        if isinstance(item, str) and "=" in item:
            key, _, value = item.partition("=")
            env[key] = value
    return ImageConfig(image_id=str(first.get("Id") or ""), exposed=tuple(sorted(ports)), env=env)


async def image_config(ctx: PluginContext, ref: str, *, cli: str, env: Mapping[str, str]) -> ImageConfig | None:
    """``<cli> image inspect <ref>`` → its config; None (and a log line) when it cannot be read."""
    rc, out, err = await probe([cli, "image", "inspect", ref], env=env)
    if rc != 0:
        ctx.say(f"warning: {cli} image inspect {ref} failed ({last_line(err) or f'exit {rc}'}): ports unknown")
        return None
    config = parse_image_config(out)
    if config.exposed:
        ctx.say(f"image {ref}: exposes port(s) {', '.join(map(str, config.exposed))}")
    elif config.ports:
        ctx.say(f"image {ref}: exposes no port; PORT={config.ports[0]} in its environment")
    else:
        ctx.say(f"image {ref}: exposes no port and sets no PORT")
    return config

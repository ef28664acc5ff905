"""Which ports a deployed image listens on: the zero-config port detection of repository and image deploys.

Owns the detection order, and the contract agreed with the docker plugin's owner:

1. ``docker image inspect <ref>`` (no ``--format``): the JSON array's ``[0].Config.ExposedPorts`` keys
   (``"8080/tcp"``), sorted and de-duplicated;
2. else ``PORT=<n>`` in ``[0].Config.Env``;
3. else the builder's framework default for the source (:func:`framework_default_port`);
4. else :data:`DEFAULT_PORT` (3000), the port most web frameworks listen on.

Detection never fails a deployment: a missing docker, a failed or slow inspect, or an answer that is not
the expected JSON falls through to the next source, and the log says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudstation.processes.quiet import NO_ANSWER, NOT_FOUND, run_quietly

DEFAULT_PORT = 3000
INSPECT_TIMEOUT = 30.0
_MAX_INSPECT_OUTPUT = 4 * 1024 * 1024
_MAX_MANIFEST = 1024 * 1024  # of a package.json / Gemfile / pom.xml read for the framework


@dataclass(frozen=True)
class Detected:
    """The ports found and where they came from (``expose``, ``env``, ``framework`` or ``default``)."""

    ports: tuple[int, ...]
    source: str


def ports_from_inspect(text: str) -> tuple[list[int], list[int]]:
    """``(exposed ports, PORT= env ports)`` from ``docker image inspect`` output (a JSON array)."""
    try:
        doc = json.loads(text.strip() or "null")
    except ValueError:
        return [], []
    first: Any = doc[0] if isinstance(doc, list) and doc else doc
    config = first.get("Config") if isinstance(first, dict) else None
    if not isinstance(config, dict):
        return [], []
    exposed: set[int] = set()
    for key in config.get("ExposedPorts") or {}:
        port = _port(str(key).split("/", 1)[0])
        if port:
            exposed.add(port)
    env_ports: list[int] = []
    for item in config.get("Env") or []:
        if isinstance(item, str) and item.startswith("PORT="):
            port = _port(item.removeprefix("PORT="))
            if port and port not in env_ports:
                env_ports.append(port)
    return sorted(exposed), env_ports


def _port(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else 0


# A framework's own default port, found from the source tree. Only frameworks whose default is firm;
# anything else falls to DEFAULT_PORT.
def _package_json_has(*names: str) -> Callable[[Path], bool]:
    def check(source: Path) -> bool:
        try:
            with (source / "package.json").open("rb") as handle:
                doc = json.loads(handle.read(_MAX_MANIFEST))
        except (OSError, ValueError):
            return False
        if not isinstance(doc, dict):
            return False
        deps: dict[str, Any] = {}
        for key in ("dependencies", "devDependencies"):
            if isinstance(doc.get(key), dict):
                deps.update(doc[key])
        return any(name in deps for name in names)

    return check


def _file_mentions(name: str, needle: str) -> Callable[[Path], bool]:
    def check(source: Path) -> bool:
        try:
            with (source / name).open("rb") as handle:
                return needle.encode() in handle.read(_MAX_MANIFEST)
        except OSError:
            return False

    return check


FRAMEWORK_PORTS: tuple[tuple[str, Callable[[Path], bool], int], ...] = (
    ("Next.js", _package_json_has("next"), 3000),
    ("Nuxt", _package_json_has("nuxt"), 3000),
    ("Ruby on Rails", _file_mentions("Gemfile", "rails"), 3000),
    ("Django", lambda source: (source / "manage.py").is_file(), 8000),
    ("Spring Boot", _file_mentions("pom.xml", "spring-boot"), 8080),
)


def framework_default_port(builder: str, source: Path | None) -> tuple[int, str]:
    """``(port, framework)`` for a source built by a zero-config builder, or ``(0, "")``."""
    if source is None or builder not in ("railpack", "nixpacks") or not source.is_dir():
        return 0, ""
    for framework, matches, port in FRAMEWORK_PORTS:
        if matches(source):
            return port, framework
    return 0, ""


async def inspect_image(image: str, env: Mapping[str, str], timeout: float = INSPECT_TIMEOUT) -> tuple[str, str]:
    """``(output, problem)`` of ``docker image inspect <image>``; ``problem`` is ``""`` on success."""
    inspect_env = {k: v for k, v in env.items() if not k.startswith("NOMAD_META_")}  # no params tokens
    try:
        code, out, _ = await run_quietly(
            ["docker", "image", "inspect", image],
            env=inspect_env,
            timeout=timeout,
            max_stdout=_MAX_INSPECT_OUTPUT,
            stderr=False,
        )
    except OSError:
        return "", "docker is not available"
    if code == NOT_FOUND:
        return "", "docker is not available"
    if code == NO_ANSWER:
        return "", f"docker image inspect gave no answer within {timeout:g}s"
    if code != 0:
        return "", f"docker image inspect exited with {code}"
    return out, ""


async def detect_ports(
    image: str,
    env: Mapping[str, str],
    say: Callable[[str], None],
    *,
    builder: str = "",
    source: Path | None = None,
    read_by_builder: tuple[int, ...] | None = None,
) -> Detected:
    """The ports of ``image`` in the order of the module docstring; ``say`` gets one line per decision.

    ``read_by_builder``: the ports the builder plugin already read from this image's config (EXPOSE, else
    ``PORT=``), so the image is not inspected a second time; an empty tuple falls through to the defaults.
    """
    exposed: list[int]
    env_ports: list[int]
    if read_by_builder is not None:
        exposed, env_ports, problem = list(read_by_builder), [], ""
    else:
        say(f"detect: docker image inspect {image}")
        text, problem = await inspect_image(image, env)
        exposed, env_ports = ports_from_inspect(text) if not problem else ([], [])
    if exposed:
        say(f"detect: exposed ports {', '.join(map(str, exposed))}")
        return Detected(tuple(exposed), "expose")
    if env_ports:
        say(f"detect: no exposed port; PORT={env_ports[0]} in the image environment")
        return Detected(tuple(env_ports), "env")
    why = problem or "the image exposes no port and sets no PORT"
    port, framework = framework_default_port(builder, source)
    if port:
        say(f"detect: {why}; using {framework}'s default port {port}")
        return Detected((port,), "framework")
    say(f"detect: {why}; using port {DEFAULT_PORT}")
    return Detected((DEFAULT_PORT,), "default")

"""A real container engine and a real registry for the docker plugin tests, started and stopped here.

- :func:`local_registry` (session fixture): Debian's ``docker-registry`` (the CNCF distribution registry)
  on a free loopback port, with htpasswd (bcrypt) auth for one user whose password is a canary. It is
  addressed as ``localhost:PORT``: podman's Docker-compatible login endpoint only allows plain HTTP for
  ``localhost``.
- :func:`podman_service` (session fixture): ``podman system service`` on a private socket (never the
  system's ``/run/podman/podman.sock``), started with a ``registries.conf`` that marks the registry
  insecure (the service reads it at start). Docker's CLI reaches it through ``DOCKER_HOST``.
- :class:`Recorder`: a directory of pass-through wrappers for ``docker`` / ``podman`` that record each
  argv, then ``exec`` the real tool: the real engine runs, and the test still sees every argv.

Missing tools skip the tests locally, and **fail** them when ``CI`` is set: CI must run them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
SESSION = secrets.token_hex(4)
LABEL = f"cs-test-session={SESSION}"
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def require(*tools: str) -> dict[str, str]:
    """The path of each tool; a missing one skips (fails under ``CI``), naming the apt package."""
    found: dict[str, str] = {}
    for tool in tools:
        path = shutil.which(tool)
        if path is None:
            message = f"{tool} is not installed (apt-get install podman podman-docker docker-registry apache2-utils)"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        found[tool] = path
    return found


def docker_cli() -> str:
    """The real Docker CLI (not podman-docker's ``docker`` script), or a skip/fail as :func:`require`."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / "docker"
        if candidate.is_file() and os.access(candidate, os.X_OK) and b"podman" not in candidate.read_bytes()[:4096]:
            return str(candidate)
    message = "Docker's CLI is not installed (only podman-docker's docker, or none)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, ready: object, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        if callable(ready) and ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start in {timeout}s: {log.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the registry -------------------------------------------------------------------------------------


@dataclass
class LocalRegistry:
    """A running ``docker-registry`` with htpasswd auth."""

    port: int
    username: str
    password: str
    root: Path

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    def _request(self, method: str, path: str, *, auth: bool = True) -> tuple[int, dict[str, str]]:
        headers = {"Accept": MANIFEST_ACCEPT}
        if auth:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers)

    def digest(self, name: str, tag: str) -> str:
        """What the registry holds for ``name:tag`` (``HEAD`` of the manifest), ``""`` when nothing."""
        status, headers = self._request("HEAD", f"/v2/{name}/manifests/{tag}")
        return headers.get("Docker-Content-Digest", "") if status == 200 else ""

    def ready(self) -> bool:
        try:
            return self._request("GET", "/v2/", auth=False)[0] == 401
        except OSError:
            return False


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    tools = require("docker-registry", "htpasswd")
    root = tmp_path_factory.mktemp("registry")
    registry = LocalRegistry(free_port(), "robot", f"CANARY-regpw-{secrets.token_hex(6)}", root)
    made = subprocess.run(
        [tools["htpasswd"], "-iBn", registry.username],  # -i: the password from stdin, not argv
        input=registry.password.encode(),
        capture_output=True,
        check=True,
    )
    (root / "htpasswd").write_bytes(made.stdout)
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{registry.port}"},
        "auth": {"htpasswd": {"realm": "cs-test", "path": str(root / "htpasswd")}},
    }
    (root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = root / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [tools["docker-registry"], "serve", str(root / "config.yml")], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for("docker-registry", registry.ready, proc, log)
        yield registry
    finally:
        stop(proc)


# -- the engine ---------------------------------------------------------------------------------------


@dataclass
class PodmanService:
    """``podman system service`` on a private socket; :attr:`env` points Docker's CLI at it."""

    socket: Path
    registries_conf: Path
    env: dict[str, str] = field(default_factory=dict)

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env={**os.environ, **self.env}, capture_output=True, text=True, check=check
        )

    def ready(self) -> bool:
        if not self.socket.exists():
            return False
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.settimeout(5)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
                return b" 200 " in sock.recv(200)
            except OSError:
                return False


@pytest.fixture(scope="session")
def podman_service(tmp_path_factory: pytest.TempPathFactory, local_registry: LocalRegistry) -> Iterator[PodmanService]:
    require("podman")
    root = tmp_path_factory.mktemp("podman")
    conf = root / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{local_registry.host}"\ninsecure = true\n')
    service = PodmanService(root / "podman.sock", conf)
    service.env = {"DOCKER_HOST": f"unix://{service.socket}", "CONTAINERS_REGISTRIES_CONF": str(conf)}
    log = root / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{service.socket}"],
            env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("podman system service", service.ready, proc, log)
        yield service
    finally:
        stop(proc)
        ids = service.podman("images", "-q", "--filter", f"label={LABEL}", check=False).stdout.split()
        if ids:
            service.podman("rmi", "-f", *sorted(set(ids)), check=False)


# -- recording pass-through wrappers ------------------------------------------------------------------


@dataclass
class Recorder:
    """``bin_dir`` holds ``docker`` / ``podman`` wrappers recording argv (one JSON array a line) to ``record``."""

    bin_dir: Path
    record: Path

    @classmethod
    def make(cls, root: Path, tools: dict[str, str]) -> Recorder:
        recorder = cls(root / "bin", root / "argv.jsonl")
        recorder.bin_dir.mkdir(parents=True)
        for name, real in tools.items():
            wrapper = recorder.bin_dir / name
            wrapper.write_text(
                "#!/bin/sh\n"
                f'"{sys.executable}" -c \'import json,sys; print(json.dumps(sys.argv[1:]))\' {name} "$@" \\\n'
                f'  >> "{recorder.record}"\n'
                f'exec "{real}" "$@"\n'
            )
            wrapper.chmod(0o755)
        return recorder

    def argvs(self) -> list[list[str]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def path(self, *extra: str) -> str:
        """The wrappers first, then ``extra`` directories (for git, etc.)."""
        return os.pathsep.join([str(self.bin_dir), *extra])

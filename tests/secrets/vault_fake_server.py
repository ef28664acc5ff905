"""A recording fake Vault: just AppRole login and KV v1/v2 reads, on a free 127.0.0.1 port, in a thread.

Answers follow Vault's documented HTTP API shapes:

- ``POST /v1/auth/<mount>/login`` with ``{"role_id", "secret_id"}`` -> ``{"auth": {"client_token", ...}}``;
  unknown credentials -> 400 ``{"errors": ["invalid role or secret ID"]}``;
- ``GET /v1/<kv2 mount>/data/<path>`` -> ``{"data": {"data": {...}, "metadata": {...}}}``;
- ``GET /v1/<kv1 mount>/<path>`` -> ``{"data": {...}}``;
- a read without a valid ``X-Vault-Token`` -> 403 ``{"errors": ["permission denied"]}``;
- an unknown path -> 404 ``{"errors": []}``.

Every request is recorded (method, path, headers, parsed JSON body) for the tests to assert on.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    """One request as the fake saw it. ``headers`` keys are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None when there was none

    @property
    def token(self) -> str | None:
        return self.headers.get("x-vault-token")


@dataclass
class FakeVault:
    """Configure before (or between) requests; read ``requests`` after."""

    role_id: str = "role-1"
    secret_id: str = "secret-1"
    approle_mount: str = "approle"
    kv1: dict[str, dict[str, Any]] = field(default_factory=dict)  # API path -> secret
    kv2: dict[str, dict[str, Any]] = field(default_factory=dict)  # API path (with /data/) -> secret
    force_status: dict[str, int] = field(default_factory=dict)  # API path -> status to answer instead
    raw_answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # API path -> status, body
    requests: list[Recorded] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, bytes]:
        api = path.removeprefix("/v1/").split("?", 1)[0]
        if api in self.raw_answers:
            return self.raw_answers[api]
        if api in self.force_status:
            status = self.force_status[api]
            return status, _errors(["permission denied"] if status == 403 else [])
        if method == "POST" and api == f"auth/{self.approle_mount}/login":
            return self._login(body)
        if method == "GET":
            return self._read(api, headers.get("x-vault-token"))
        return 405, _errors([f"unsupported operation {method}"])

    def _login(self, body: Any) -> tuple[int, bytes]:
        if not isinstance(body, dict) or body.get("role_id") != self.role_id:
            return 400, _errors(["invalid role or secret ID"])
        if body.get("secret_id") != self.secret_id:
            return 400, _errors(["invalid role or secret ID"])
        token = f"hvs.fake-token-{len(self.issued_tokens) + 1}"
        self.issued_tokens.append(token)
        answer = {
            "request_id": "00000000-0000-0000-0000-000000000001",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": None,
            "wrap_info": None,
            "warnings": None,
            "auth": {
                "client_token": token,
                "accessor": "accessor-1",
                "policies": ["default", "build"],
                "token_policies": ["default", "build"],
                "metadata": {"role_name": "build"},
                "lease_duration": 1200,
                "renewable": True,
                "entity_id": "",
                "token_type": "service",
                "orphan": True,
            },
        }
        return 200, json.dumps(answer).encode()

    def _read(self, api: str, token: str | None) -> tuple[int, bytes]:
        if token is None or token not in self.issued_tokens:
            return 403, _errors(["permission denied"])
        envelope: dict[str, Any] = {
            "request_id": "00000000-0000-0000-0000-000000000002",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        }
        if api in self.kv2:
            metadata = {
                "created_time": "2024-01-01T00:00:00.000000Z",
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": 3,
            }
            envelope["data"] = {"data": self.kv2[api], "metadata": metadata}
            return 200, json.dumps(envelope).encode()
        if api in self.kv1:
            envelope["data"] = self.kv1[api]
            envelope["lease_duration"] = 2764800
            return 200, json.dumps(envelope).encode()
        return 404, _errors([])


def _errors(errors: list[str]) -> bytes:
    return json.dumps({"errors": errors}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake = self.server.fake
        with self.server.lock:
            fake.requests.append(Recorded(self.command, self.path, headers, body))
            status, answer = fake.answer(self.command, self.path, headers, body)
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "http://127.0.0.1:9/v1/elsewhere")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeVault) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.lock = threading.Lock()


class RunningFakeVault:
    """A ``FakeVault`` served in a background thread; use as a context manager."""

    def __init__(self, fake: FakeVault) -> None:
        self.fake = fake
        self._server = _Server(fake)
        host, port = self._server.server_address[:2]
        fake.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-vault", daemon=True
        )

    def __enter__(self) -> FakeVault:
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

"""A recording fake of a registry's manifest endpoint, for what the real ``docker-registry`` here cannot do.

The real registry of :mod:`tests.plugins.engine_kit` speaks htpasswd (Basic) auth. Token (``Bearer``)
auth, a registry that leaves ``Docker-Content-Digest`` out, and a missing manifest are played by this
stdlib server on a free loopback port; it records every request (method, path, Authorization).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from tests.localhttp import serving

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
TOKEN = "registry-token-0c1d"


@dataclass
class FakeRegistry:
    """How the fake answers, and what it was asked."""

    auth: Literal["none", "basic", "bearer"] = "basic"
    username: str = "robot"
    password: str = ""
    repository: str = "team/web"
    tag: str = "v1"
    send_digest_header: bool = True
    base_url: str = ""
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Authorization)

    @property
    def host(self) -> str:
        return self.base_url.removeprefix("http://")

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def _handler(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, method: str) -> None:
            authorization = self.headers.get("Authorization", "")
            fake.requests.append((method, self.path, authorization))
            if self.path.startswith("/token"):
                ok = authorization == fake.basic()
                self._send(200 if ok else 401, json.dumps({"token": TOKEN}).encode() if ok else b"{}", method)
                return
            if fake.auth == "basic" and authorization != fake.basic():
                self._send(401, b"{}", method, {"WWW-Authenticate": 'Basic realm="fake"'})
                return
            if fake.auth == "bearer" and authorization != f"Bearer {TOKEN}":
                realm = f"{fake.base_url}/token"
                challenge = f'Bearer realm="{realm}",service="fake",scope="repository:{fake.repository}:pull"'
                self._send(401, b"{}", method, {"WWW-Authenticate": challenge})
                return
            if self.path != f"/v2/{fake.repository}/manifests/{fake.tag}":
                self._send(404, b"{}", method)
                return
            headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            if fake.send_digest_header:
                headers["Docker-Content-Digest"] = DIGEST
            self._send(200, MANIFEST, method, headers)

        def _send(self, status: int, body: bytes, method: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def do_GET(self) -> None:
            self._answer("GET")

    return Handler


@contextmanager
def fake_registry(fake: FakeRegistry) -> Iterator[FakeRegistry]:
    """Serve ``fake`` on a free ``127.0.0.1`` port until the block ends."""
    with serving(_handler(fake)) as url:
        fake.base_url = url
        yield fake

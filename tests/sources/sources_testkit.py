"""Test helpers of the sources room: local bare git repositories, a smart-HTTP git server with basic
auth (``git http-backend`` behind ``http.server``), a file server for tarballs, and a recording runner."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cloudstation.sources.commands import CollectingRunner
from tests.localhttp import serving

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cs test",
    "GIT_AUTHOR_EMAIL": "cs@example.invalid",
    "GIT_COMMITTER_NAME": "cs test",
    "GIT_COMMITTER_EMAIL": "cs@example.invalid",
}


def git(*args: str, cwd: Path | None = None) -> None:
    env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd or Path.cwd())}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_bare_repo(root: Path, repository: str, branches: Mapping[str, Mapping[str, str]]) -> Path:
    """``root/<repository>.git``: a bare repository whose branches hold the given files."""
    bare = root / f"{repository}.git"
    work = root / "work" / repository
    work.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch", "scratch", cwd=work)
    for branch, files in branches.items():
        git("checkout", "--quiet", "--orphan", branch, cwd=work)
        git("rm", "-r", "-q", "--cached", "--ignore-unmatch", ".", cwd=work)
        for name, content in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(content, encoding="utf-8")
        git("add", *files, cwd=work)
        git("commit", "--quiet", "-m", f"{branch} content", cwd=work)
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("clone", "--quiet", "--bare", str(work), str(bare))
    return bare


@dataclass
class RecordingRunner:
    """A real runner that also records every argv and environment it was given."""

    inner: CollectingRunner = field(default_factory=CollectingRunner)
    calls: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)

    async def __call__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> int:
        self.calls.append((list(argv), dict(env)))
        return await self.inner(argv, env=env, cwd=cwd)


@dataclass
class HttpServer:
    base_url: str
    requests: list[tuple[str, str | None]]  # path, Authorization header


@contextmanager
def git_http_server(project_root: Path, username: str, password: str) -> Iterator[HttpServer]:
    """Smart-HTTP git on 127.0.0.1 serving ``project_root``; every request needs basic auth."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    requests: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            authorization = self.headers.get("Authorization")
            requests.append((self.path, authorization))
            if authorization != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="cs-test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "GIT_PROJECT_ROOT": str(project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": username,
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
            self.send_response(status)
            for key, value in headers:
                if key.lower() != "status":
                    self.send_header(key, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    with serving(Handler) as base_url:
        yield HttpServer(base_url, requests)


@contextmanager
def file_server(
    routes: Mapping[str, bytes], *, announce_length: bool = True, stall_seconds: float = 0.0
) -> Iterator[str]:
    """Serves ``routes`` (path → body) on 127.0.0.1; other paths answer 404. Yields the base URL.

    ``stall_seconds``: wait that long after the headers before sending the body (timeouts)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = routes.get(self.path.partition("?")[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            if announce_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.flush()
                time.sleep(stall_seconds)
                self.wfile.write(body)

    with serving(Handler) as base_url:
        yield base_url

"""Helpers for the local-plugin tests: a plugin context over a real log stream, finding and killing the
processes a test started (by a marker in their environment), and a tiny real HTTP server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cloudstation.events.buildlog import BuildLog, LogLine
from cloudstation.events.identity import DeploymentRef
from cloudstation.plugins.base import PluginContext
from tests.localhttp import serving

MARKER_ENV = "CS_LOCAL_PLUGIN_TEST"
PROC = Path("/proc")


@dataclass
class Harness:
    """A plugin context whose log lines are kept, and a marker every process it starts inherits."""

    ctx: PluginContext
    lines: list[LogLine] = field(default_factory=list)

    @property
    def marker(self) -> str:
        return self.ctx.env[MARKER_ENV]

    @property
    def text(self) -> str:
        return "".join(line.content for line in self.lines)


def make_harness(tmp_path: Path, app_path: Path, *, app: str = "web", env: dict[str, str] | None = None) -> Harness:
    lines: list[LogLine] = []
    log = BuildLog(None, DeploymentRef("test-dep", 1), echo=lines.append)
    ctx = PluginContext(
        project="demo",
        app=app,
        app_path=app_path,
        state_dir=tmp_path / "state",
        log=log,
        env={MARKER_ENV: uuid.uuid4().hex, **(env or {})},
    )
    return Harness(ctx, lines)


def marked_pids(marker: str) -> list[int]:
    """Live processes whose initial environment holds ``marker`` (everything started through the ctx)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if stat[stat.rfind(")") + 2 :].startswith("Z"):
                continue
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return found


def kill_marked(marker: str) -> list[int]:
    """SIGKILL every live process carrying ``marker``; returns the pids that were still there."""
    pids = marked_pids(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while marked_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def wait_until_gone(marker: str, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (pids := marked_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def read_text(path: str | Path) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextlib.contextmanager
def http_server(status: int = 200, body: str = "ok") -> Iterator[str]:
    """A real HTTP server on a free loopback port answering every GET with ``status``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = f"{body} {self.path}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url

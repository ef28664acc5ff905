"""``process``: a Platform that runs the app as a detached, supervised local process on a port.

Owns the deployed process's lifecycle on this machine: starting it through
:mod:`.process_supervisor` (new session, survives ``cs``, restarted when it crashes), the record of what
runs (``process.json`` in the plugin's state dir), waiting until it listens on ``127.0.0.1:PORT``,
stopping it (SIGTERM to its process group, SIGKILL after ``stop_timeout``) and reporting its status.

A recorded pid counts as ours only when the process's command line carries the token we gave it (on
systems with ``/proc``), so a reused pid is never signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from cloudstation.plugins.base import (
    Artifact,
    Deployment,
    Plugin,
    PluginConfig,
    PluginContext,
    PluginError,
    Status,
)

SHELL = "/bin/sh"
SUPERVISOR_MODULE = "cloudstation.plugins.builtin.process_supervisor"
HOST = "127.0.0.1"
LOG_TAIL_LINES = 20
_POLL = 0.1
_KILL_WAIT = 5.0
_PROC = Path("/proc")


class ProcessConfig(PluginConfig, frozen=True):
    """``deploy { use = "process" ... }``."""

    start_cmd: str
    port: int = 0
    env: dict[str, str] = msgspec.field(default_factory=dict)
    stop_timeout: float = 10.0
    ready_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.start_cmd.strip():
            raise ValueError("start_cmd must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535 (got {self.port})")
        if self.stop_timeout < 0 or self.ready_timeout <= 0:
            raise ValueError("stop_timeout must be >= 0 and ready_timeout > 0")


@dataclass(frozen=True)
class Record:
    """What runs: written after a successful start, removed when stopped."""

    pid: int  # the supervisor: session and process-group leader
    token: str
    port: int
    command: str
    started: float  # Unix time
    log: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def load(cls, path: Path) -> Record | None:
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                pid=int(data["pid"]),
                token=str(data["token"]),
                port=int(data["port"]),
                command=str(data["command"]),
                started=float(data["started"]),
                log=str(data["log"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise PluginError(f"process record {path} is unreadable; delete it after checking nothing runs") from None


@dataclass(frozen=True)
class _Files:
    record: Path
    log: Path
    pidfile: Path
    state: Path

    @classmethod
    def of(cls, ctx: PluginContext) -> _Files:
        d = ctx.plugin_state("process")
        return cls(d / "process.json", d / "app.log", d / "supervisor.pid", d / "supervisor.json")


class Process(Plugin):
    """Runs the app as a supervised local process listening on 127.0.0.1."""

    name: ClassVar[str] = "process"
    Config: ClassVar[type[PluginConfig]] = ProcessConfig
    description: ClassVar[str] = "Runs the app as a detached, supervised local process on 127.0.0.1:PORT."

    config: ProcessConfig

    async def deploy(self, ctx: PluginContext, artifact: Artifact) -> Deployment:
        cfg = self.config
        files = _Files.of(ctx)
        cwd = Path(artifact.ref) if artifact.kind == "directory" and artifact.ref else ctx.app_path
        if not cwd.is_dir():
            raise PluginError(f"cannot start the app: directory {cwd} does not exist")
        old = Record.load(files.record)
        if old is not None:
            if _group_is_ours(old.pid, old.token):
                ctx.say(f"process: stopping the running instance (pid {old.pid}, port {old.port})")
                await _stop_group(old.pid, cfg.stop_timeout)
            _forget(files)

        port = cfg.port or _free_port()
        if await _listening(port):
            raise PluginError(f"port {port} is already in use on {HOST}; choose another port (or port = 0)")
        token = uuid.uuid4().hex
        if files.log.exists():
            files.log.replace(files.log.with_name("app.log.1"))
        for stale in (files.pidfile, files.state):
            stale.unlink(missing_ok=True)

        env = {**os.environ, **ctx.env, **cfg.env, "PORT": str(port)}
        # -P: the app directory (cwd) must not shadow the supervisor's imports (say, an app's json.py).
        argv = [sys.executable, "-P", "-m", SUPERVISOR_MODULE, "--log", str(files.log), "--pidfile", str(files.pidfile)]
        argv += ["--state", str(files.state), "--token", token, "--", SHELL, "-c", cfg.start_cmd]
        ctx.say(f"process: starting `{cfg.start_cmd}` in {cwd} with PORT={port}")
        await ctx.check(argv, what="starting the process supervisor", env=env, cwd=cwd)
        try:
            pid = int(json.loads(files.pidfile.read_text(encoding="utf-8"))["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            raise PluginError(f"the process supervisor did not report its pid ({files.pidfile})") from None
        record = Record(pid, token, port, cfg.start_cmd, time.time(), str(files.log))
        files.record.write_text(record.to_json(), encoding="utf-8")

        try:
            problem = await _wait_ready(record, files.state, cfg.ready_timeout)
        except BaseException:
            await _stop_group(pid, cfg.stop_timeout)
            _forget(files)
            raise
        if problem:
            await _stop_group(pid, cfg.stop_timeout)
            _forget(files)
            _say_log_tail(ctx, files.log)
            raise PluginError(f"deploy failed: {problem}")
        url = f"http://{HOST}:{port}"
        ctx.say(f"process: listening on {url} (supervisor pid {pid}; log {files.log})")
        return Deployment(
            id=f"process-{ctx.app}-{token[:12]}",
            url=url,
            metadata={"pid": str(pid), "port": str(port), "log": str(files.log)},
        )

    async def destroy(self, ctx: PluginContext) -> None:
        files = _Files.of(ctx)
        record = Record.load(files.record)
        if record is None:
            ctx.say(f"process: nothing to destroy ({ctx.app} is not running)")
            return
        if _group_is_ours(record.pid, record.token):
            ctx.say(f"process: stopping pid {record.pid} (port {record.port})")
            killed = await _stop_group(record.pid, self.config.stop_timeout)
            how = f"killed after {self.config.stop_timeout:g}s" if killed else "stopped"
            ctx.say(f"process: {how}")
        else:
            ctx.say(f"process: {ctx.app} was not running (pid {record.pid} had exited)")
        _forget(files)

    async def status(self, ctx: PluginContext) -> Status:
        files = _Files.of(ctx)
        record = Record.load(files.record)
        if record is None:
            return Status("stopped", "not deployed")
        state = _read_state(files.state)
        restarts = int(state.get("restarts") or 0)
        if _is_ours(record.pid, record.token):
            detail = f"pid {record.pid}, port {record.port}, up {_duration(time.time() - record.started)}"
            if restarts:
                detail += f", {restarts} restart{'s' if restarts != 1 else ''}"
            if state.get("app_pid") is None and state:
                detail += ", app restarting"
            return Status("running", detail)
        if _group_is_ours(record.pid, record.token):
            return Status("running", f"port {record.port}; the supervisor (pid {record.pid}) is gone: unsupervised")
        detail = f"exited (was pid {record.pid}, port {record.port})"
        if state.get("gave_up"):
            detail += f"; gave up after {restarts} restarts (last exit {state.get('last_exit')})"
        return Status("stopped", detail)


# -- waiting -----------------------------------------------------------------------------------------


async def _wait_ready(record: Record, state_file: Path, timeout: float) -> str:
    """Wait until the app listens; returns ``""`` when it does, else what went wrong."""
    deadline = time.monotonic() + timeout
    while True:
        if await _listening(record.port):
            return ""
        state = _read_state(state_file)
        if state.get("last_exit") is not None:
            return f"the app exited (exit {state['last_exit']}) before listening on port {record.port}"
        if not _pid_alive(record.pid):
            return f"the process supervisor (pid {record.pid}) exited before the app listened on port {record.port}"
        if time.monotonic() >= deadline:
            return f"the app did not listen on {HOST}:{record.port} within {timeout:g}s"
        await asyncio.sleep(_POLL)


async def _listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- stopping ----------------------------------------------------------------------------------------


async def _stop_group(pgid: int, timeout: float) -> bool:
    """SIGTERM the process group, SIGKILL it after ``timeout``; True when it had to be killed."""
    if not _signal_group(pgid, signal.SIGTERM):
        return False
    if await _wait_group_gone(pgid, timeout):
        return False
    _signal_group(pgid, signal.SIGKILL)
    await _wait_group_gone(pgid, _KILL_WAIT)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def _forget(files: _Files) -> None:
    for path in (files.record, files.pidfile, files.state):
        path.unlink(missing_ok=True)


# -- recognising our processes -----------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, pgrp)`` of ``pid`` from ``/proc``; None when it does not exist."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[2])


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not _PROC.is_dir():
        return True
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _has_token(pid: int, token: str) -> bool:
    for name in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if token.encode() in (_PROC / str(pid) / name).read_bytes():
                return True
    return False


def _is_ours(pid: int, token: str) -> bool:
    """Whether ``pid`` is alive and the supervisor we started (its command line holds ``token``)."""
    if not _pid_alive(pid):
        return False
    if not _PROC.is_dir():  # no way to check further here: trust the record
        return True
    return _has_token(pid, token)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pgid and stat[0] != "Z":
                members.append(int(entry.name))
    return members


def _group_is_ours(pgid: int, token: str) -> bool:
    """Whether the supervisor, or any process left in its group, is one we started."""
    if _is_ours(pgid, token):
        return True
    return _PROC.is_dir() and any(_has_token(pid, token) for pid in _group_members(pgid))


# -- reporting ---------------------------------------------------------------------------------------


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _say_log_tail(ctx: PluginContext, log: Path) -> None:
    try:
        lines = log.read_bytes().decode("utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return
    if not lines:
        ctx.say(f"process: the app wrote nothing ({log})")
        return
    ctx.say(f"process: last {len(lines)} lines of {log}:")
    for line in lines:
        ctx.say(f"  | {line}")


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"

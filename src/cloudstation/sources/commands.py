"""How the sources room runs external commands: the ``CommandRunner`` protocol and its default.

A later layer streams every subprocess's output into the deployment's build log (dispatch's runner
goes through ``plugins.childlog.run_into_log``), so commands never run behind the caller's back: they go
through a runner that owns the output. The default runner here, :class:`CollectingRunner`, keeps the
output lines in memory. Cancelling the task that awaits a runner kills the child (its whole process
group, :func:`~cloudstation.processes.stopping.kill_group`) before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from cloudstation.processes.stopping import kill_group

StreamName = Literal["stdout", "stderr"]

_CHUNK = 64 * 1024


class CommandRunner(Protocol):
    """Runs ``argv`` with exactly ``env`` in ``cwd``; returns the exit code. Output belongs to the runner.

    Raises ``FileNotFoundError`` when ``argv[0]`` cannot be found. Cancellation must kill the child.
    """

    async def __call__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> int: ...


@dataclass(frozen=True)
class OutputLine:
    """One line of a child's output, without its trailing newline."""

    stream: StreamName
    text: str


@dataclass
class CollectingRunner:
    """Default runner: ``asyncio`` subprocess, stdin closed, stdout/stderr collected line by line."""

    lines: list[OutputLine] = field(default_factory=list)

    async def __call__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> int:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a kill reaches git's helpers too
        )
        try:
            assert process.stdout is not None and process.stderr is not None
            await asyncio.gather(self._collect(process.stdout, "stdout"), self._collect(process.stderr, "stderr"))
            return await process.wait()
        finally:
            if process.returncode is None:
                kill_group(process.pid)
                await process.wait()

    def text(self, stream: StreamName | None = None) -> str:
        """The collected output (of one stream, or both interleaved as read), newline-joined."""
        return "\n".join(line.text for line in self.lines if stream is None or line.stream == stream)

    async def _collect(self, reader: asyncio.StreamReader, stream: StreamName) -> None:
        pending = b""
        while chunk := await reader.read(_CHUNK):
            *complete, pending = (pending + chunk).split(b"\n")
            self.lines.extend(OutputLine(stream, _decode(raw)) for raw in complete)
        if pending:
            self.lines.append(OutputLine(stream, _decode(pending)))


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")

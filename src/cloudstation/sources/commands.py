"""How the sources room runs external commands: the ``CommandRunner`` protocol and its default.

A later layer streams every subprocess's output into the deployment's build log (dispatch's runner
goes through ``plugins.childlog.run_into_log``), so commands never run behind the caller's back: they go
through a runner that owns the output. The default runner here, :class:`CollectingRunner`, keeps the
output lines in memory. Cancelling the task that awaits a runner stops the child (its whole process
group: SIGTERM, then SIGKILL after 2 s) before the cancellation propagates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from cloudstation.processes.spawn import run_child
from cloudstation.processes.spool import Chunk

StreamName = Literal["stdout", "stderr"]


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
    """Default runner: the child through :func:`~cloudstation.processes.spawn.run_child` (stdin closed, its
    own process group), stdout/stderr collected line by line in reading order."""

    lines: list[OutputLine] = field(default_factory=list)

    async def __call__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> int:
        pending: dict[StreamName, bytes] = {"stdout": b"", "stderr": b""}

        def collect(chunks: Sequence[Chunk]) -> None:
            for chunk in chunks:
                stream = chunk.output
                if chunk.data:
                    *complete, pending[stream] = (pending[stream] + chunk.data).split(b"\n")
                    self.lines.extend(OutputLine(stream, _decode(raw)) for raw in complete)
                elif pending[stream]:  # EOF: the unfinished last line
                    self.lines.append(OutputLine(stream, _decode(pending[stream])))
                    pending[stream] = b""

        return await run_child(argv, collect, env=env, cwd=cwd)

    def text(self, stream: StreamName | None = None) -> str:
        """The collected output (of one stream, or both interleaved as read), newline-joined."""
        return "\n".join(line.text for line in self.lines if stream is None or line.stream == stream)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")

"""How a deployment's log is shown locally: rich on a terminal, raw when piped, JSON lines, or nothing.

Every line reaching here is already redacted by the log stream.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Literal

import msgspec

from cloudstation.events.buildlog import LogLine

Mode = Literal["rich", "plain", "json", "quiet"]


def choose_mode(*, quiet: bool, as_json: bool) -> Mode:
    if quiet:
        return "quiet"
    if as_json:
        return "json"
    return "rich" if sys.stdout.isatty() else "plain"


class LogDisplay:
    """A callable echo for :class:`~cloudstation.events.buildlog.BuildLog` plus a live status line."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.started = time.monotonic()
        self.phase = "init"
        self._status: Any = None
        self._console: Any = None
        self._encoder = msgspec.json.Encoder()
        if mode == "rich":
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=True)
            self._status = self._console.status(self._status_text())
            self._status.start()

    def __call__(self, line: LogLine) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "json":
            doc = {
                "sequence": line.sequence,
                "phase": line.phase,
                "logOutput": line.output,
                "content": line.content,
                "timestamp": line.timestamp_ms,
            }
            sys.stdout.write(self._encoder.encode(doc).decode() + "\n")
            return
        if self.mode == "plain":
            stream = sys.stderr if line.output == "stderr" else sys.stdout
            stream.write(line.content)
            return
        from rich.text import Text

        self.phase = line.phase
        text = Text()
        text.append(f"{line.phase:>8} ", style="bold yellow" if line.output == "stderr" else "dim cyan")
        text.append(line.content.rstrip("\n"))
        self._console.print(text)
        self._status.update(self._status_text())

    def _status_text(self) -> str:
        return f"{self.phase} · {time.monotonic() - self.started:.1f}s"

    def tick(self) -> None:
        """Refresh the elapsed time on the status line."""
        if self._status is not None:
            self._status.update(self._status_text())

    def note(self, text: str) -> None:
        """A message from cs itself, not part of the deployment log (goes to stderr)."""
        if self.mode == "quiet":
            return
        if self._console is not None:
            self._console.print(text, style="dim")
        else:
            sys.stderr.write(text + "\n")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        sys.stdout.flush()

"""SIGTERM / SIGINT during a run: one convention for every command that runs children.

:class:`StopSignals` is installed around the part of a command that runs children (``cs stream``, the
lifecycle's apps, a dispatched task):

- the first signal cancels the run's task once; cancelling stops the children (:func:`stop_group`:
  SIGTERM to their process group, SIGKILL to the group after 2 s);
- more signals while it is installed are ignored, so that stop always finishes (a second Ctrl-C or
  SIGTERM never orphans the build);
- when uninstalled, the handlers that were there before come back (not the default action that
  asyncio would leave): one more signal then ends ``cs`` through its entry point with 128+N, the
  events not yet delivered being kept in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Any

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_KILL_GRACE = 2.0


class StopSignals:
    """``with StopSignals() as stop:`` inside a coroutine; ``stop.signum`` is the signal that stopped it.

    ``on_stop`` is called at the first signal, before the task is cancelled."""

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.received: list[int] = []
        self._on_stop = on_stop
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    @property
    def signum(self) -> int | None:
        """The first signal received, or None."""
        return self.received[0] if self.received else None

    def __enter__(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for signum in _SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            self._loop.add_signal_handler(signum, self._on_signal, signum)
        return self

    def _on_signal(self, signum: int) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            if self._on_stop is not None:
                self._on_stop()
            if self._task is not None:
                self._task.cancel()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._loop is not None
        for signum in _SIGNALS:
            self._loop.remove_signal_handler(signum)
            previous = self._previous.get(signum)
            if previous is not None:
                signal.signal(signum, previous)


async def stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the child's process group, then SIGKILL it after a grace period.

    The stop always finishes: cancelling the caller again (a second signal) does not interrupt it;
    the cancellation is passed on once the group is gone.
    """
    if proc.returncode is not None:
        return
    stopping = asyncio.ensure_future(_terminate_then_kill(proc))
    cancelled = False
    while not stopping.done():
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def _terminate_then_kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(_KILL_GRACE):
            await proc.wait()
    except TimeoutError:
        pass
    # SIGKILL the group in any case: the child may be gone while its children still run.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()

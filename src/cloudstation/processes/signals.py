"""SIGTERM / SIGINT during a run: one convention for every command that runs children.

:class:`StopSignals` is installed around the part of a command that runs children (``cs stream``, the
lifecycle's apps, a dispatched task):

- the first signal cancels the running task once; cancelling stops the children
  (:func:`~cloudstation.processes.stopping.stop_group`: SIGTERM to their process group, SIGKILL to the
  group after 2 s);
- more signals while it is installed are ignored, so that stop always finishes (a second Ctrl-C or
  SIGTERM never orphans the build);
- :meth:`StopSignals.caught` marks where the cancellation it caused ends: there the task is uncancelled
  and the code after the block goes on (to report the stop), any other cancellation passes through;
- when uninstalled, the handlers that were there before come back (not the default action that
  asyncio would leave): one more signal then ends ``cs`` through its entry point with 128+N, the
  events not yet delivered being kept in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """``with StopSignals() as stop:`` inside a coroutine; ``stop.signum`` is the signal that stopped it.

    ``on_stop`` is called at the first signal, before the task is cancelled. The usual shape::

        with StopSignals() as stop:
            with stop.caught():
                await work()
            if stop.stopped:
                ...  # report "stopped by signal N"
    """

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.received: list[int] = []
        self.stopped = False  # the cancellation a signal caused was caught (the task was uncancelled)
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

    @contextlib.contextmanager
    def caught(self) -> Iterator[None]:
        """End here the cancellation a signal caused: uncancel the task once and set :attr:`stopped`.

        Any other cancellation (none of ours, or a second one) passes through unchanged.
        """
        try:
            yield
        except asyncio.CancelledError:
            if self.signum is None or self.stopped or self._task is None:
                raise
            self._task.uncancel()
            self.stopped = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._loop is not None
        for signum in _SIGNALS:
            self._loop.remove_signal_handler(signum)
            previous = self._previous.get(signum)
            if previous is not None:
                signal.signal(signum, previous)

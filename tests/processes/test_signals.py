"""StopSignals on its own: the first signal cancels the task once, more are ignored, handlers come back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from cloudstation.processes.signals import StopSignals


@pytest.fixture
def own_handlers() -> Iterator[list[int]]:
    """Python-level handlers for SIGTERM/SIGINT that record what reaches them (restored after)."""
    seen: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    before = {s: signal.signal(s, record) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield seen
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


async def _until(condition: object, what: str) -> None:
    assert callable(condition)
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_first_signal_cancels_once_more_are_ignored_and_handlers_come_back(own_handlers: list[int]) -> None:
    stops: list[str] = []

    async def scenario() -> StopSignals:
        task = asyncio.current_task()
        assert task is not None
        with StopSignals(lambda: stops.append("stop")) as stop:
            with stop.caught():
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(60)  # cancelled by the signal
            assert stop.stopped
            assert task.cancelling() == 0  # uncancelled: the code after the block goes on
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            await _until(lambda: len(stop.received) == 3, "the later signals are received")
            await asyncio.sleep(0)  # not cancelled again
        return stop

    stop = asyncio.run(scenario())
    assert stop.received == [signal.SIGTERM, signal.SIGINT, signal.SIGTERM]
    assert stop.signum == signal.SIGTERM
    assert stops == ["stop"]
    assert own_handlers == []  # none reached the previous handlers while installed
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # not asyncio's leftover default
    os.kill(os.getpid(), signal.SIGINT)  # the previous handler is back
    for _ in range(1000):
        if own_handlers:
            break
        time.sleep(0.01)
    assert own_handlers == [signal.SIGINT]


def test_a_cancellation_no_signal_caused_passes_through() -> None:
    async def scenario() -> None:
        task = asyncio.current_task()
        assert task is not None
        with StopSignals() as stop:
            with pytest.raises(asyncio.CancelledError), stop.caught():
                task.cancel()
                await asyncio.sleep(60)
            assert not stop.stopped
            assert stop.signum is None
            task.uncancel()

    asyncio.run(scenario())


def test_only_the_first_cancellation_after_a_signal_is_caught(own_handlers: list[int]) -> None:
    async def scenario() -> None:
        task = asyncio.current_task()
        assert task is not None
        with StopSignals() as stop:
            with stop.caught():
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(60)
            with pytest.raises(asyncio.CancelledError), stop.caught():
                task.cancel()  # someone else's: it is not swallowed
                await asyncio.sleep(60)
            task.uncancel()

    asyncio.run(scenario())

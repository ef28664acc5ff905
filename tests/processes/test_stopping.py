"""Stopping a process group: SIGTERM, then SIGKILL after the grace, to the whole group, even when the leader exited."""

from __future__ import annotations

import asyncio
import sys

from cloudstation.processes.stopping import kill_group, stop_group
from tests.proctools import alive

# A grandchild in the leader's process group that ignores SIGTERM, and says so once it does.
_GRANDCHILD = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(120)"
)


def _leader(on_term: str) -> str:
    """A leader that starts the grandchild, prints its pid, then ``on_term``s on SIGTERM ("exit" or "ignore")."""
    handler = "lambda *a: os._exit(0)" if on_term == "exit" else "signal.SIG_IGN"
    return (
        "import os, signal, subprocess, sys, time; "
        f"signal.signal(signal.SIGTERM, {handler}); "
        f"p = subprocess.Popen([sys.executable, '-c', {_GRANDCHILD!r}]); "
        "sys.stdout.write(f'{p.pid}\\n'); sys.stdout.flush(); time.sleep(120)"
    )


async def _start(on_term: str) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _leader(on_term), stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    lines = {(await proc.stdout.readline()).decode().strip() for _ in range(2)}
    assert "ready" in lines  # the grandchild ignores SIGTERM from now on
    (pid,) = (int(line) for line in lines if line != "ready")
    return proc, pid


async def _gone(pid: int) -> bool:
    for _ in range(1000):
        if not alive(pid):
            return True
        await asyncio.sleep(0.01)
    return False


def test_the_group_is_killed_even_when_the_leader_exits_at_sigterm() -> None:
    async def scenario() -> None:
        proc, grandchild = await _start("exit")
        await stop_group(proc, grace=0.2)
        assert proc.returncode == 0  # the leader left on SIGTERM
        assert await _gone(grandchild)  # its child, which ignored SIGTERM, got the SIGKILL

    asyncio.run(scenario())


def test_a_leader_ignoring_sigterm_is_killed_after_the_grace() -> None:
    async def scenario() -> None:
        proc, grandchild = await _start("ignore")
        await stop_group(proc, grace=0.2)
        assert proc.returncode == -9
        assert await _gone(grandchild)

    asyncio.run(scenario())


def test_cancelling_the_caller_again_does_not_interrupt_the_stop() -> None:
    async def scenario() -> None:
        proc, grandchild = await _start("ignore")
        stopping = asyncio.create_task(stop_group(proc, grace=0.5))
        await asyncio.sleep(0.05)
        stopping.cancel()  # a second signal
        try:
            await stopping
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the cancellation must be passed on once the group is gone")
        assert proc.returncode == -9
        assert await _gone(grandchild)

    asyncio.run(scenario())


def test_kill_group_is_at_once_and_quiet_about_a_group_that_is_gone() -> None:
    async def scenario() -> None:
        proc, grandchild = await _start("ignore")
        kill_group(proc.pid)
        assert await proc.wait() == -9
        assert await _gone(grandchild)
        kill_group(proc.pid)  # nothing left: no error

    asyncio.run(scenario())

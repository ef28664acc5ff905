"""Stopping a child's process group: SIGTERM, then SIGKILL after a grace period; or SIGKILL at once.

A child runs in its own process group (``start_new_session=True``), so a stop reaches what it started
too (a build tool's workers, git's helpers). The group is SIGKILLed in any case after the grace, even
when the child itself already exited: its children may still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL


async def stop_group(proc: asyncio.subprocess.Process, grace: float = KILL_GRACE) -> None:
    """SIGTERM the child's process group, then SIGKILL it after ``grace`` seconds.

    The stop always finishes: cancelling the caller again (a second signal) does not interrupt it;
    the cancellation is passed on once the group is gone.
    """
    if proc.returncode is not None:
        return
    stopping = asyncio.ensure_future(_terminate_then_kill(proc, grace))
    cancelled = False
    while not stopping.done():
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def _terminate_then_kill(proc: asyncio.subprocess.Process, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        pass
    # SIGKILL the group in any case: the child may be gone while its children still run.
    kill_group(proc.pid)
    await proc.wait()


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` at once (gone already, or not ours: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)

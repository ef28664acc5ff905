"""Starting a child and draining its output: its own process group, pipes into the spool, stopped when cancelled.

:func:`run_child` is how cs runs a command whose output someone reads line by line (a deployment's build
log, ``cs stream``): the child's stdout and stderr are drained by one thread each into a
:class:`~cloudstation.processes.spool.PipeSpool` (so the child runs at its own speed however slow the
consumer is), and the chunks are handed to the consumer on the event loop in reading order. The child
gets its environment without cs's own secrets (:mod:`.environment`). Cancelling the awaiting task stops
the child's whole process group (:func:`~cloudstation.processes.stopping.stop_group`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cloudstation.processes.environment import without_private_env
from cloudstation.processes.spool import Chunk, PipeSpool, enlarge_pipe, start_reader
from cloudstation.processes.stopping import stop_group

TAKE_BYTES = 256 * 1024  # bytes of output handed to the consumer between two yields to the event loop

#: Called on the event loop with the next chunks, in reading order; an empty ``data`` is that pipe's EOF.
OutputConsumer = Callable[[Sequence[Chunk]], None]


async def run_child(
    argv: Sequence[str],
    consume: OutputConsumer,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: bytes | None = None,
) -> int:
    """Run ``argv`` in its own process group, its output handed to ``consume``; returns its exit code.

    The child gets ``env`` (default: this process's environment) without cs's own secrets, and
    ``stdin`` (or nothing: ``/dev/null``). ``consume`` is called until both pipes are closed (it has
    then seen both EOFs); the exit code is awaited after. Cancelling the awaiting task (or ``consume``
    raising) stops the child's whole process group (SIGTERM, then SIGKILL after 2 s) before the
    exception is passed on. A missing executable raises :class:`FileNotFoundError`.
    """
    loop = asyncio.get_running_loop()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    enlarge_pipe(out_w)
    enlarge_pipe(err_w)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=without_private_env(env),
            cwd=cwd,
            start_new_session=True,
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    spool = PipeSpool(loop)
    start_reader(out_r, "stdout", spool)
    start_reader(err_r, "stderr", spool)
    try:
        if stdin is not None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin)
                await proc.stdin.drain()
            proc.stdin.close()
        open_pipes = 2
        while open_pipes:
            chunks = await spool.take(TAKE_BYTES)
            consume(chunks)
            open_pipes -= sum(1 for chunk in chunks if not chunk.data)
            await asyncio.sleep(0)  # let the rest of the loop (the publisher) run between batches
        return await proc.wait()
    except BaseException:
        await stop_group(proc)
        raise
    finally:
        spool.close()

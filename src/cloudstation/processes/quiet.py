"""Running a probe quietly: a short command whose output is data, not log (``docker version``, ``image inspect``).

The child gets its own process group and never cs's private variables (:mod:`.environment`); its
output is returned, not logged. It is bounded in time: no answer within ``timeout`` kills the whole
group and gives :data:`NO_ANSWER`; a command not on ``PATH`` gives :data:`NOT_FOUND`; cancelling the
caller kills the group before the cancellation goes on. Other start-up failures (``OSError``) are the
caller's to say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from cloudstation.processes.environment import without_private_env
from cloudstation.processes.stopping import kill_group

NOT_FOUND = 127  # the shell's code for a command not found
NO_ANSWER = 124  # timeout(1)'s code for a command stopped at its deadline


async def run_quietly(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    max_stdout: int | None = None,
    stderr: bool = True,
) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``argv``; stdout cut at ``max_stdout`` bytes when given.

    With ``stderr=False`` the child's stderr goes to ``/dev/null``. Not found is ``(127, "", "<cmd>: not
    found on PATH")``; no answer in time is ``(124, "", "`<cmd>` gave no answer in <timeout>s")``.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if stderr else asyncio.subprocess.DEVNULL,
            env=without_private_env(env),
            start_new_session=True,
        )
    except FileNotFoundError:
        return NOT_FOUND, "", f"{argv[0]}: not found on PATH"
    try:
        async with asyncio.timeout(timeout):
            if max_stdout is None:
                out, err = await proc.communicate()
            else:
                assert proc.stdout is not None
                out, err = await proc.stdout.read(max_stdout), b""
                await proc.wait()
    except TimeoutError:
        await _kill(proc)
        return NO_ANSWER, "", f"`{' '.join(argv[:3])}` gave no answer in {timeout:g}s"
    except BaseException:
        await _kill(proc)
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace")


async def _kill(proc: asyncio.subprocess.Process) -> None:
    kill_group(proc.pid)
    await proc.wait()

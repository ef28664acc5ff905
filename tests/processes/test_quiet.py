"""A probe run quietly: its output returned, never cs's private variables, bounded in time, its group killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from cloudstation.processes.quiet import NO_ANSWER, NOT_FOUND, run_quietly
from tests.proctools import alive


async def test_exit_code_stdout_and_stderr_are_returned() -> None:
    code, out, err = await run_quietly(["sh", "-c", "echo out; echo err >&2; exit 3"], env={}, timeout=30)
    assert (code, out, err) == (3, "out\n", "err\n")


async def test_stderr_can_go_to_dev_null_and_stdout_is_cut() -> None:
    code, out, err = await run_quietly(
        ["sh", "-c", "printf 0123456789; echo noise >&2"], env={}, timeout=30, max_stdout=4, stderr=False
    )
    assert (code, out, err) == (0, "0123", "")


async def test_a_command_not_on_path_is_127_with_one_line() -> None:
    assert await run_quietly(["no-such-tool-cs"], env={}, timeout=30) == (
        NOT_FOUND,
        "",
        "no-such-tool-cs: not found on PATH",
    )


async def test_private_variables_never_reach_the_child() -> None:
    env = {"PATH": "/usr/bin:/bin", "NATS_CREDS": "creds-canary", "NOMAD_META_PARAMS": "params-canary", "KEEP": "1"}
    code, out, _ = await run_quietly(["env"], env=env, timeout=30)
    assert code == 0
    assert "KEEP=1" in out.splitlines()
    assert "creds-canary" not in out and "params-canary" not in out


async def test_no_answer_in_time_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 120 & echo $! > {pidfile}; wait"
    code, out, err = await run_quietly(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, timeout=0.5)
    assert (code, out) == (NO_ANSWER, "")
    assert "gave no answer in 0.5s" in err
    grandchild = int(pidfile.read_text())
    for _ in range(100):
        if not alive(grandchild):
            break
        await asyncio.sleep(0.05)
    assert not alive(grandchild)


async def test_cancelling_the_caller_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "leader.pid"
    script = f"echo $$ > {pidfile}; exec {sys.executable} -c 'import time; time.sleep(120)'"
    task = asyncio.create_task(run_quietly(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, timeout=60))
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    leader = int(pidfile.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(leader)

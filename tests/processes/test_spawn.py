"""run_child on its own: its output reaches the consumer in reading order with both EOFs; no private env."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import pytest

from cloudstation.processes.environment import PRIVATE_ENV, without_private_env
from cloudstation.processes.spawn import run_child
from cloudstation.processes.spool import Chunk


def test_output_in_reading_order_then_both_eofs_then_the_exit_code() -> None:
    seen: list[Chunk] = []

    def consume(chunks: Sequence[Chunk]) -> None:
        seen.extend(chunks)

    code = "import sys; sys.stdout.write('a' * 300000); sys.stdout.flush(); sys.stderr.write('err'); sys.exit(3)"
    rc = asyncio.run(run_child([sys.executable, "-c", code], consume, stdin=b"ignored"))
    assert rc == 3
    out = b"".join(c.data for c in seen if c.output == "stdout")
    assert out == b"a" * 300000
    assert b"".join(c.data for c in seen if c.output == "stderr") == b"err"
    for output in ("stdout", "stderr"):  # each pipe ends with exactly one EOF, after all its data
        mine = [c for c in seen if c.output == output]
        assert [c.data for c in mine].count(b"") == 1
        assert mine[-1].data == b""


def test_the_child_never_inherits_cs_private_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PRIVATE_ENV:
        monkeypatch.setenv(name, "private-value")
    monkeypatch.setenv("CS_KIDS_VISIBLE", "shown")
    seen: list[bytes] = []
    code = "import os, sys; sys.stdout.write(repr(sorted(k for k in os.environ if k in %r or k == 'CS_KIDS_VISIBLE')))"
    rc = asyncio.run(
        run_child([sys.executable, "-c", code % sorted(PRIVATE_ENV)], lambda cs: seen.extend(c.data for c in cs))
    )
    assert rc == 0
    assert b"".join(seen) == b"['CS_KIDS_VISIBLE']"
    assert without_private_env({"NATS_CREDS": "x", "PATH": "/bin"}) == {"PATH": "/bin"}


def test_a_missing_executable_is_file_not_found() -> None:
    with pytest.raises(FileNotFoundError):
        asyncio.run(run_child(["definitely-not-a-tool-42"], lambda chunks: None))

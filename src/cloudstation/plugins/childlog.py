"""A child process's output into a deployment's build log: the glue of :mod:`cloudstation.processes`
(which runs children and knows nothing of events) and :class:`~cloudstation.events.buildlog.BuildLog`
(which turns output into events and knows nothing of processes).

Every subprocess whose output belongs in a deployment's log goes through :func:`run_into_log`:
:meth:`PluginContext.run <cloudstation.plugins.base.PluginContext.run>`, dispatch's own commands and
``cs stream``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cloudstation.events.buildlog import BuildLog
from cloudstation.processes.spawn import run_child


async def run_into_log(
    log: BuildLog,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: bytes | None = None,
    phase: str | None = None,
    capture: list[str] | None = None,
) -> int:
    """Run ``argv`` with stdout and stderr streamed into ``log``; returns its exit code.

    The pipes are drained by threads into a memory-bounded spool, so the child runs at its own
    speed however slow the rest of the pipeline is. The child gets ``env`` (default: this
    process's environment) without cs's own secrets (``PRIVATE_ENV``). The lines are tagged
    ``phase`` (default: the log's current phase); with ``capture``, the (redacted) lines of this run
    are also appended to it. Cancelling the awaiting task stops the child's whole process group
    (SIGTERM, then SIGKILL after 2 s). A missing executable raises :class:`FileNotFoundError`; a log
    that already ended, :class:`~cloudstation.events.buildlog.BuildLogClosedError` (nothing is run).
    """
    feed = log.feed(phase, capture)
    return await run_child(argv, feed, env=env, cwd=cwd, stdin=stdin)

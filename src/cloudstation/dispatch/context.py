"""What one dispatched deployment carries while its task runs: log, events, backend, redaction, files.

Owns :class:`TaskContext` (handed to every task function) and its ``step`` helper, which brackets a
phase with the best-effort backend step updates (``in_progress`` → ``completed`` | ``failed``). A backend
failure is a warning in the log, never a failed deployment; an update is bounded (``CS_STEP_UPDATE_BOUND``,
default 10s; much less once the backend has failed or the run is stopping) so a dead backend cannot hold
a stopping worker past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cloudstation.backend.client import BackendClient
from cloudstation.events.buildlog import BuildLog, EventSink
from cloudstation.events.contract import Event
from cloudstation.natsconn import parse_duration
from cloudstation.redaction import Redactor
from cloudstation.vocabulary import Step

log = logging.getLogger("cloudstation.dispatch")

# A step update may retry for a while (3 retries with backoff); never longer than this per update
# (``CS_STEP_UPDATE_BOUND``).
DEFAULT_STEP_UPDATE_BOUND = 10.0
# While stopping (signal, timeout), or once the backend has failed an update, an update gets much less.
STOPPING_UPDATE_BOUND = 0.8


def step_update_bound(env: Mapping[str, str]) -> float:
    """``CS_STEP_UPDATE_BOUND`` in seconds (a duration: ``500ms``, ``10s``; default 10s); ConfigError if invalid."""
    text = env.get("CS_STEP_UPDATE_BOUND", "").strip()
    return parse_duration(text, name="CS_STEP_UPDATE_BOUND") if text else DEFAULT_STEP_UPDATE_BOUND


@dataclass
class TaskContext:
    """One deployment's runtime: its log stream, event sink, backend client, redactor and work dir."""

    log: BuildLog
    redactor: Redactor
    env: Mapping[str, str]
    work_dir: Path
    state_dir: Path
    sink: EventSink | None = None
    prefix: str = ""
    backend: BackendClient | None = None
    deployment_id: str = ""
    deployment_type: str = ""
    stopping: bool = False
    step_update_bound: float = DEFAULT_STEP_UPDATE_BOUND
    backend_failures: int = field(default=0, init=False)

    def say(self, text: str, *, phase: str | None = None) -> None:
        """A progress line of cs's own in the deployment log."""
        self.log.emit(text, phase=phase)

    def warn(self, text: str) -> None:
        self.log.emit(f"warning: {text}", output="stderr")

    def publish(self, event: Event) -> None:
        """Journal ``event`` for delivery (a no-op without NATS)."""
        if self.sink is not None:
            self.sink.submit([event])

    def add_secrets(self, *secrets: str) -> None:
        self.redactor.add(*secrets)

    async def update_step(
        self, step: Step, status: str, error: str | None = None, *, deployment_type: str | None = None
    ) -> None:
        """Best-effort backend step update, bounded in time; a failure is a logged warning.

        ``deployment_type`` overrides :attr:`deployment_type` for this update (the clone step of an upload
        is reported as ``local_upload``, which is what the backend expects for it).
        """
        if self.backend is None:
            return
        # Once the backend failed an update, later ones get a short bound: a dead backend must not
        # add its whole retry schedule to every step of the deployment.
        bound = self.step_update_bound
        if self.stopping or self.backend_failures:
            bound = min(bound, STOPPING_UPDATE_BOUND)
        try:
            async with asyncio.timeout(bound):
                ok = await self.backend.update_step(
                    self.deployment_id,
                    deployment_type or self.deployment_type,
                    step,
                    status,  # type: ignore[arg-type]
                    self.redactor.redact(error) if error else None,
                )
        except TimeoutError:
            ok = False
        if not ok:
            self.backend_failures += 1
            self.warn(f"backend step update {step}/{status} not recorded (the deployment goes on)")

    @contextlib.asynccontextmanager
    async def step(
        self, step: Step, *, phase: str | None = None, deployment_type: str | None = None
    ) -> AsyncIterator[None]:
        """Run a block as backend step ``step``: ``in_progress``, then ``completed`` or ``failed``."""
        self.log.phase = phase or step
        await self.update_step(step, "in_progress", deployment_type=deployment_type)
        try:
            yield
        except BaseException as exc:
            reason = str(exc) if str(exc) else type(exc).__name__
            if isinstance(exc, asyncio.CancelledError):
                reason = "stopped"
                self.stopping = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.update_step(step, "failed", reason, deployment_type=deployment_type))
            raise
        await self.update_step(step, "completed", deployment_type=deployment_type)

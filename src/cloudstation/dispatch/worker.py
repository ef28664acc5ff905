"""The ``cs dispatch`` worker: input → params → one task under a deadline and signals → events → exit code.

Owns the process-level contract of a Nomad-dispatched job:

- input: ``NOMAD_META_TASK`` + ``NOMAD_META_PARAMS`` (base64 of JSON), or a task and a plain JSON file;
- invalid input is a :class:`~cloudstation.dispatch.params.ParamsError` (exit 2); when the document still
  names ``deploymentJobId``, ``deploymentId`` and ``serviceId``, ``deployment.failed`` and
  ``build.log.end failed`` are published first, so the platform learns of the failure;
- the job deadline ``CS_JOB_TIMEOUT`` (default 15m) and the bound of one backend step update
  ``CS_STEP_UPDATE_BOUND`` (default 10s) are read first (invalid: exit 2);
- the deadline and SIGTERM / SIGINT cancel the running phase (its children are stopped within 2 s, even
  if a second signal comes), publish ``deployment.failed`` + ``build.log.end failed`` and exit within
  3 s: 1 after the deadline, 128+N after signal N (as every ``cs`` command);
- at exit the events are awaited for ``CS_DELIVERY_TIMEOUT``; what is not acknowledged stays in the outbox
  (``$NOMAD_ALLOC_DIR/cs``) and is reported, without changing the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cloudstation.backend.client import BackendClient
from cloudstation.dispatch.context import TaskContext, step_update_bound
from cloudstation.dispatch.params import ParamsError, PartialIdentity, Task, decode_params, deployment_ref, parse_task
from cloudstation.dispatch.params_models import DeployParamsBase, DestroyJobPackParams
from cloudstation.errors import ConfigError, ContractError, CsError, ExitCode
from cloudstation.events.buildlog import BuildLog, Echo
from cloudstation.events.contract import validate_deployment_id
from cloudstation.events.identity import DeploymentRef
from cloudstation.events.outbox import default_state_dir
from cloudstation.events.session import EventSession
from cloudstation.lifecycle.reporter import open_deployment
from cloudstation.natsconn import format_duration, parse_duration
from cloudstation.processes.signals import StopSignals
from cloudstation.redaction import Redactor

log = logging.getLogger("cloudstation.dispatch")

DEFAULT_JOB_TIMEOUT = 15 * 60.0
# After a signal, how long the events may take to be acknowledged (Nomad's kill_timeout is 5 s).
STOP_DELIVERY_TIMEOUT = 1.0

TaskBody = Callable[[TaskContext], Awaitable[None]]


@dataclass(frozen=True)
class DispatchRequest:
    """What to run: a task name and its params document (base64 of JSON, or plain JSON)."""

    task: str
    raw: bytes | str
    base64_encoded: bool


@dataclass(frozen=True)
class Outcome:
    """How a dispatch ended: the exit code and a one-line, redacted reason when it failed."""

    exit_code: int
    error: str = ""


def request_from_env(env: Mapping[str, str]) -> DispatchRequest:
    """The request Nomad gives: ``NOMAD_META_TASK`` and ``NOMAD_META_PARAMS`` (base64)."""
    return DispatchRequest(env.get("NOMAD_META_TASK", ""), env.get("NOMAD_META_PARAMS", ""), base64_encoded=True)


def request_from_file(task: str, path: Path) -> DispatchRequest:
    """A local request: ``task`` and the plain JSON document in ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParamsError(f"params file {path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    return DispatchRequest(task, data, base64_encoded=False)


def job_timeout(env: Mapping[str, str]) -> float:
    """``CS_JOB_TIMEOUT`` in seconds (default 15m)."""
    text = env.get("CS_JOB_TIMEOUT", "").strip()
    return parse_duration(text, name="CS_JOB_TIMEOUT") if text else DEFAULT_JOB_TIMEOUT


def run(request: DispatchRequest, env: Mapping[str, str], *, echo: Echo | None = None) -> Outcome:
    """Run one dispatch to the end; raises ``ParamsError``/``ConfigError`` (exit 2) for bad input."""
    deadline = job_timeout(env)
    update_bound = step_update_bound(env)
    kind = parse_task(request.task)
    try:
        params = decode_params(kind, request.raw, base64_encoded=request.base64_encoded, env=env)
        if isinstance(params, DeployParamsBase):
            _check_subject_token(params.deployment_id, params)
    except ParamsError as exc:
        asyncio.run(_report_invalid(exc, env))
        raise
    if isinstance(params, DestroyJobPackParams):
        from cloudstation.dispatch.destroy import destroy_jobs

        return asyncio.run(_run_destroy(params, env, echo, deadline, destroy_jobs))
    from cloudstation.dispatch.tasks import task_body

    body = task_body(params)
    return asyncio.run(_run_deploy(kind, params, env, echo, deadline, body, update_bound=update_bound))


def _check_subject_token(deployment_id: str, params: DeployParamsBase) -> None:
    try:
        validate_deployment_id(deployment_id)
    except ContractError:
        raise ParamsError(
            'params: field "deploymentId" cannot be used in a subject (no ".", "*", ">" or white space)',
            field="deploymentId",
            identity=PartialIdentity(),  # cannot be addressed
        ) from None


# ------------------------------------------------------------------------------------- invalid input


async def _report_invalid(exc: ParamsError, env: Mapping[str, str]) -> None:
    """Publish ``deployment.failed`` + ``build.log.end failed`` for an invalid document, when addressable."""
    ident = exc.identity
    if not ident.can_report_failure or ident.deployment_job_id is None or ident.deployment_type is None:
        return
    try:
        validate_deployment_id(ident.deployment_id)
        session = EventSession(env)
    except (ContractError, ConfigError) as problem:
        log.warning("the failure cannot be published: %s", problem)
        return
    identity = deployment_ref(ident, ident.deployment_job_id, ident.deployment_type)
    async with session:
        stream, reporter = open_deployment(session, identity, redactor=Redactor(session.secrets))
        stream.emit(f"error: {exc}", output="stderr")
        reporter.finish(False)
        await session.close()


# ------------------------------------------------------------------------------------------- deploys


def _work_dir(env: Mapping[str, str]) -> tuple[Path, bool]:
    """The deployment's scratch directory and whether it is ours to remove (``CS_WORK_DIR`` is kept)."""
    given = env.get("CS_WORK_DIR", "").strip()
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        return path, False
    base = env.get("NOMAD_TASK_DIR") or None
    return Path(tempfile.mkdtemp(prefix="cs-dispatch-", dir=base)), True


def _backend(params: DeployParamsBase, env: Mapping[str, str]) -> BackendClient | None:
    try:
        return BackendClient.from_params(
            params.backend_url, params.access_token, env, cluster_domain=params.cluster_domain
        )
    except ConfigError as exc:
        log.warning("backend updates disabled: %s", exc)
        return None


async def _run_deploy(
    kind: Task,
    params: DeployParamsBase,
    env: Mapping[str, str],
    echo: Echo | None,
    deadline: float,
    body: TaskBody,
    *,
    update_bound: float,
) -> Outcome:
    identity = deployment_ref(params, params.deployment_job_id, "image" if kind is Task.DEPLOY_IMAGE else "git_repo")
    session = EventSession(env)
    redactor = Redactor([*params.secrets(), *session.secrets])
    work_dir, remove_work_dir = _work_dir(env)
    backend = _backend(params, env)
    try:
        async with session:
            stream, reporter = open_deployment(session, identity, redactor=redactor, echo=echo)
            ctx = TaskContext(
                log=stream,
                redactor=redactor,
                env=env,
                work_dir=work_dir,
                state_dir=default_state_dir(env),
                sink=session.publisher,
                prefix=session.prefix,
                backend=backend,
                deployment_id=identity.deployment_id,
                deployment_type=identity.type,
                step_update_bound=update_bound,
            )
            reporter.start()
            stream.emit(f"cs dispatch: {kind.value} of deployment {identity.deployment_id}")
            error, stopped = await _supervise(lambda: body(ctx), deadline, ctx)
            if error:
                ctx.stopping = True
                stream.emit(f"error: {error}", output="stderr")
            else:
                stream.emit("deployment succeeded")
            reporter.finish(not error)
            await session.close(STOP_DELIVERY_TIMEOUT if stopped else None)
    finally:
        if backend is not None:
            with contextlib.suppress(Exception):
                await backend.aclose()
        if remove_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    return Outcome(_failed_code(stopped), redactor.redact(error)) if error else Outcome(ExitCode.OK)


def _failed_code(signum: int | None) -> int:
    """128+N after signal N (the convention of every ``cs`` command), else 1."""
    return 128 + signum if signum else ExitCode.FAILED


async def _supervise(start: Callable[[], Awaitable[None]], deadline: float, ctx: TaskContext) -> tuple[str, int | None]:
    """Run the task under the deadline and SIGTERM/SIGINT; ``(error, the signal that stopped it)``."""
    error = ""

    def on_stop() -> None:
        ctx.stopping = True

    with StopSignals(on_stop) as stop:
        try:
            with stop.caught():
                async with asyncio.timeout(deadline):
                    await start()
            if stop.stopped and stop.signum is not None:
                error = f"stopped by {signal.Signals(stop.signum).name}"
        except TimeoutError:
            error = f"the job timed out after {format_duration(deadline)} (CS_JOB_TIMEOUT)"
        except CsError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: report it without its text (it may quote data)
            log.debug("task crashed", exc_info=True)
            error = f"internal error: {type(exc).__name__} (a bug in cs)"
    return " ".join(error.split()), stop.signum


# ------------------------------------------------------------------------------------------- destroy


async def _run_destroy(
    params: DestroyJobPackParams,
    env: Mapping[str, str],
    echo: Echo | None,
    deadline: float,
    destroy: Callable[[TaskContext, DestroyJobPackParams], Awaitable[int]],
) -> Outcome:
    session = EventSession(env)
    redactor = Redactor([*params.secrets(), *session.secrets])
    async with session:
        # No deployment: the output is shown (redacted) but not published as a build log.
        stream = BuildLog(None, DeploymentRef("destroy-job-pack", 0), redactor=redactor, echo=echo, phase="deploy")
        ctx = TaskContext(
            log=stream,
            redactor=redactor,
            env=env,
            work_dir=Path(os.getcwd()),
            state_dir=default_state_dir(env),
            sink=session.publisher,
            prefix=session.prefix,
        )
        failed: list[int] = []

        async def body() -> None:
            failed.append(await destroy(ctx, params))

        error, stopped = await _supervise(body, deadline, ctx)
        await session.close(STOP_DELIVERY_TIMEOUT if stopped else None)
    if error:
        return Outcome(_failed_code(stopped), redactor.redact(error))
    if failed and failed[0]:
        return Outcome(ExitCode.FAILED, f"{failed[0]} of {len(params.jobs)} job(s) could not be stopped")
    return Outcome(ExitCode.OK)

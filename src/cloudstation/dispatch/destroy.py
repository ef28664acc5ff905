"""``destroy-job-pack``: stop and purge each Nomad job, then publish ``job.destroyed`` for it.

For each job, in order: ``nomad job stop -purge <jobId>``, run by the nomad-pack plugin's
:func:`~cloudstation.plugins.builtin.nomadpack.stop_job` (the one implementation of that command), with
that job's ``NOMAD_ADDR`` and ``NOMAD_TOKEN`` in the child's environment (never in argv) and nothing else
of the worker's but a few harmless basics: each job names its own Nomad, which must not receive the
worker's own ``NOMAD_*`` settings. On success ``job.destroyed {id: serviceId, reason}``. Destroying is
idempotent: a job Nomad does not know (``No job(s) with prefix or ID ... found``) is already gone, so it is
destroyed too. A Nomad that cannot be reached is retried (3 more attempts, ``CS_DESTROY_RETRY_WAIT``
seconds apart, default 2); only a job that still cannot be stopped is a failure, reported in the log and
counted, and the others are still processed. Any non-empty ``reason`` is passed through: the backend
may add reasons before cs knows them.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping

from cloudstation.dispatch.context import TaskContext
from cloudstation.dispatch.params_models import DestroyJob, DestroyJobPackParams
from cloudstation.events.contract import EventKind, JobDestroyed, make_event
from cloudstation.plugins.base import PluginContext, PluginError
from cloudstation.plugins.builtin.nomadpack import JobStopError, stop_job

# A Nomad job id as we accept it in argv: no leading "-" (it would read as a flag), no white space.
_JOB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@/-]{0,127}")
STOP_ATTEMPTS = 4
DEFAULT_RETRY_WAIT = 2.0

# Variables a nomad child may inherit; the rest (NOMAD_META_PARAMS with every token...) stays out.
_INHERITED = frozenset({"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"})


def nomad_env(base: Mapping[str, str], address: str, token: str) -> dict[str, str]:
    """A nomad child's environment: the harmless basics of ``base`` plus this job's address and token."""
    env = {key: value for key, value in base.items() if key in _INHERITED or key.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    if address:
        env["NOMAD_ADDR"] = address
    if token:
        env["NOMAD_TOKEN"] = token
    return env


async def destroy_jobs(ctx: TaskContext, params: DestroyJobPackParams) -> int:
    """Stop every job of ``params``; the number that could not be stopped."""
    failures = 0
    wait = _retry_wait(ctx.env)
    # The plugin's view of this run: its output goes to the task's log (redacted, stopped on cancel).
    plugin_ctx = PluginContext(
        project="dispatch", app="destroy-job-pack", app_path=ctx.work_dir, state_dir=ctx.state_dir, log=ctx.log
    )
    for index, job in enumerate(params.jobs):
        if await _stop(ctx, plugin_ctx, job, index, wait):
            event = make_event(
                EventKind.JOB_DESTROYED,
                JobDestroyed(id=job.service_id, reason=params.reason),
                prefix=ctx.prefix,
            )
            ctx.publish(event)
            ctx.say(f"job.destroyed published for service {job.service_id}")
        else:
            failures += 1
    return failures


def _retry_wait(env: Mapping[str, str]) -> float:
    raw = env.get("CS_DESTROY_RETRY_WAIT", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_RETRY_WAIT
    except ValueError:
        return DEFAULT_RETRY_WAIT
    return value if 0 <= value <= 60 else DEFAULT_RETRY_WAIT


async def _stop(ctx: TaskContext, plugin_ctx: PluginContext, job: DestroyJob, index: int, wait: float) -> bool:
    where = f"jobs[{index}]"
    if not _JOB_ID.fullmatch(job.job_id):
        ctx.warn(f"{where}: invalid or empty jobId; not stopped")
        return False
    if not job.service_id:
        ctx.warn(f"{where} ({job.job_id}): serviceId is empty; not stopped")
        return False
    env = nomad_env(ctx.env, job.nomad_address, job.nomad_token)
    for attempt in range(1, STOP_ATTEMPTS + 1):
        command = f"nomad job stop -purge {job.job_id}"
        ctx.say(f"stopping job {job.job_id}: {command}" + (f" (attempt {attempt})" if attempt > 1 else ""))
        try:
            stopped = await stop_job(plugin_ctx, job.job_id, env)
        except JobStopError as exc:
            if not exc.unreachable or attempt == STOP_ATTEMPTS:
                ctx.warn(f"{where} ({job.job_id}): {exc}")
                return False
            ctx.warn(f"{where} ({job.job_id}): Nomad not reachable (exit {exc.nomad_exit}); retrying in {wait:g}s")
            await asyncio.sleep(wait)
            continue
        except PluginError as exc:  # nomad is not installed
            ctx.warn(f"{where} ({job.job_id}): {exc}; not stopped")
            return False
        except OSError as exc:
            ctx.warn(f"{where} ({job.job_id}): cannot run nomad ({type(exc).__name__}); not stopped")
            return False
        if stopped:
            ctx.say(f"job {job.job_id} stopped and purged")
        else:
            ctx.say(f"job {job.job_id} is already gone (Nomad does not know it): destroyed")
        return True
    return False

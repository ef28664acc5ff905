"""``destroy-job-pack``: stop and purge each Nomad job, then publish ``job.destroyed`` for it.

For each job, in order: ``nomad job stop -purge <jobId>`` with that job's ``NOMAD_ADDR`` and
``NOMAD_TOKEN`` in the child's environment (never in argv); on success ``job.destroyed {id: serviceId,
reason}``. Destroying is idempotent: a job Nomad does not know (``No job(s) with prefix or ID ... found``)
is already gone, so it is destroyed too. A Nomad that cannot be reached is retried (3 more attempts,
``CS_DESTROY_RETRY_WAIT`` seconds apart, default 2); only a job that still cannot be stopped is a failure,
reported in the log and counted, and the others are still processed (the original never stopped
anything: **Fix**). Any non-empty ``reason`` is passed through, as the original did.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping

from cloudstation.dispatch.context import TaskContext
from cloudstation.dispatch.params_models import DestroyJob, DestroyJobPackParams
from cloudstation.events.contract import EventKind, JobDestroyed, make_event
from cloudstation.plugins.childlog import run_into_log

# A Nomad job id as we accept it in argv: no leading "-" (it would read as a flag), no white space.
_JOB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@/-]{0,127}")

# What nomad prints for a job it does not know (`nomad job stop`: "No job(s) with prefix or ID ... found").
_NO_SUCH_JOB = re.compile(r"No job\(s\) with prefix or ID .* found|job not found", re.IGNORECASE)
# Transport failures worth another attempt (the agent restarting, a network blip).
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|timeout awaiting|connection reset|EOF|"
    r"Unexpected response code: 5\d\d|context deadline exceeded",
    re.IGNORECASE,
)
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
    for index, job in enumerate(params.jobs):
        if await _stop(ctx, job, index, wait):
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


async def _stop(ctx: TaskContext, job: DestroyJob, index: int, wait: float) -> bool:
    where = f"jobs[{index}]"
    if not _JOB_ID.fullmatch(job.job_id):
        ctx.warn(f"{where}: invalid or empty jobId; not stopped")
        return False
    if not job.service_id:
        ctx.warn(f"{where} ({job.job_id}): serviceId is empty; not stopped")
        return False
    argv = ["nomad", "job", "stop", "-purge", job.job_id]
    env = nomad_env(ctx.env, job.nomad_address, job.nomad_token)
    for attempt in range(1, STOP_ATTEMPTS + 1):
        ctx.say(f"stopping job {job.job_id}: {' '.join(argv)}" + (f" (attempt {attempt})" if attempt > 1 else ""))
        output: list[str] = []
        try:
            code = await run_into_log(ctx.log, argv, env=env, capture=output)
        except FileNotFoundError:
            ctx.warn(f"{where} ({job.job_id}): nomad is not installed (not found on PATH); not stopped")
            return False
        except OSError as exc:
            ctx.warn(f"{where} ({job.job_id}): cannot run nomad ({type(exc).__name__}); not stopped")
            return False
        text = "".join(output)
        if code == 0:
            ctx.say(f"job {job.job_id} stopped and purged")
            return True
        if _NO_SUCH_JOB.search(text):
            ctx.say(f"job {job.job_id} is already gone (Nomad does not know it): destroyed")
            return True
        if not _UNREACHABLE.search(text) or attempt == STOP_ATTEMPTS:
            break
        ctx.warn(f"{where} ({job.job_id}): Nomad not reachable (exit {code}); retrying in {wait:g}s")
        await asyncio.sleep(wait)
    ctx.warn(f"{where} ({job.job_id}): nomad job stop failed (exit {code})")
    return False

"""``cs dispatch``: the Nomad-dispatched deployment worker (``NOMAD_META_TASK`` / ``NOMAD_META_PARAMS``).

Exit codes: 0 the task succeeded; 1 it failed (or timed out); 2 unknown task, bad base64/JSON, invalid
params or settings; 128+N stopped by signal N (143 for SIGTERM). Events not acknowledged in time stay
in the outbox and do not change the exit code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from cloudstation.errors import ExitCode, UsageError

_TASKS = ("deploy-repository", "redeploy-repository", "deploy-image", "destroy-job-pack")


@click.command()
@click.option("--task", type=str, default=None, help=f"Task to run ({', '.join(_TASKS)}); with --params-file.")
@click.option(
    "--params-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Plain JSON params document (instead of NOMAD_META_PARAMS).",
)
@click.option("--quiet", is_flag=True, help="Do not show the deployment log.")
def dispatch(task: str | None, params_file: Path | None, quiet: bool) -> None:
    """Run one dispatched deployment task and report it to NATS JetStream.

    \b
    In Nomad:  cs dispatch            (reads NOMAD_META_TASK and NOMAD_META_PARAMS, base64 of JSON)
    Locally:   cs dispatch --task deploy-repository --params-file params.json

    \b
    Tasks: deploy-repository / redeploy-repository (clone or upload, build with fallback, push, deploy),
    deploy-image (detect ports, deploy), destroy-job-pack (nomad job stop -purge each job).

    \b
    Environment: NATS_* (see cs --help), CS_JOB_TIMEOUT (default 15m), CS_DELIVERY_TIMEOUT,
    CS_WORK_DIR (keep generated files there), CS_GIT_BASE_URL, BACKEND_URL / ACCESS_TOKEN,
    CS_STEP_UPDATE_BOUND (how long one backend step update may take, default 10s).
    Exit codes: 0 ok, 1 task failed / timed out, 2 invalid task, params or settings,
    128+N stopped by signal N (143 for SIGTERM, 130 for SIGINT).
    """
    from cloudstation.dispatch.worker import request_from_env, request_from_file, run
    from cloudstation.events.buildlog import LogLine

    if (task is None) != (params_file is None):
        raise UsageError("--task and --params-file go together (or give neither and set NOMAD_META_*)")
    if task is not None and params_file is not None:
        request = request_from_file(task, params_file)
    else:
        request = request_from_env(os.environ)
    # The params carry every token: keep them out of the children's environment.
    os.environ.pop("NOMAD_META_PARAMS", None)

    def echo(line: LogLine) -> None:
        stream = sys.stderr if line.output == "stderr" else sys.stdout
        stream.write(line.content if line.content.endswith("\n") else line.content + "\n")
        stream.flush()

    outcome = run(request, dict(os.environ), echo=None if quiet else echo)
    if outcome.exit_code != ExitCode.OK:
        click.echo(f"cs: error: {outcome.error}", err=True)
        raise click.exceptions.Exit(outcome.exit_code)

"""``cs stream``: run any command with its output streamed as a deployment's build log.

The exit code is the command's, whatever happens to the events (an outage, a full disk): what could
not be delivered or kept is said on stderr. SIGTERM/SIGINT stop the command's whole process group
(SIGTERM, SIGKILL after 2 s; a second signal does not interrupt that) and exit 128+N.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import click

from cloudstation.errors import ExitCode, OutboxError, OutboxFullError


@click.command(context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
@click.option("--deployment-id", required=True, help="The deployment whose log this is (one subject token).")
@click.option("--job-id", type=int, required=True, help="The numeric deploymentJobId every event carries.")
@click.option("--service-id", default="", help="serviceId in each log event.")
@click.option("--owner-id", default="", help="ownerId in each log event.")
@click.option("--phase", default="build", show_default=True, help="Phase tag of the lines (init, clone, build, ...).")
@click.option("--end", "send_end", is_flag=True, help="Then publish build.log.end: success on exit 0, else failed.")
@click.option(
    "--redact-env",
    "redact_env",
    multiple=True,
    metavar="VAR",
    help="Redact the value of this environment variable from the log (repeatable).",
)
@click.option("--quiet", is_flag=True, help="Do not show the lines locally.")
@click.option("--json", "as_json", is_flag=True, help="Show each line as one JSON object.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def stream(
    deployment_id: str,
    job_id: int,
    service_id: str,
    owner_id: str,
    phase: str,
    send_end: bool,
    redact_env: tuple[str, ...],
    quiet: bool,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND, streaming its stdout and stderr live as build.log.<deployment-id> events.

    Usage: cs stream --deployment-id D --job-id N [--end] -- COMMAND [ARGS...]

    The exit code is COMMAND's. Lines are numbered in one sequence across stdout and stderr, secrets
    named with --redact-env (and the NATS seed) are replaced by ***, and the command never waits on
    NATS: lines are kept in the local outbox and delivered as fast as the server allows.
    """
    from cloudstation.cli.display import LogDisplay, choose_mode
    from cloudstation.events.contract import validate_field
    from cloudstation.events.identity import DeploymentRef
    from cloudstation.events.session import EventSession
    from cloudstation.redaction import Redactor

    identity = DeploymentRef(deployment_id=deployment_id, job_id=job_id, service_id=service_id, owner_id=owner_id)
    validate_field(phase, "--phase", limit=64)
    session = EventSession(os.environ, required=True)
    redactor = Redactor([os.environ.get(name, "") for name in redact_env] + session.secrets)
    display = LogDisplay(choose_mode(quiet=quiet, as_json=as_json))
    try:
        rc = asyncio.run(_run(session, identity, redactor, display, list(command), phase, send_end))
    finally:
        display.close()
    raise click.exceptions.Exit(rc)


async def _run(
    session: Any, identity: Any, redactor: Any, display: Any, argv: list[str], phase: str, send_end: bool
) -> int:
    from cloudstation.events.buildlog import BuildLog
    from cloudstation.plugins.childlog import run_into_log
    from cloudstation.processes.signals import StopSignals

    lost = ""
    async with session:
        echo = None if display.mode == "quiet" else display  # --quiet: no line is made to be shown
        log = BuildLog(session.publisher, identity, prefix=session.prefix, redactor=redactor, echo=echo, phase=phase)
        if session.publisher is not None:
            log.check_fits(session.publisher.payload_limit)
        ticker = asyncio.create_task(_tick(display))
        rc = 0
        with StopSignals() as stop:
            try:
                with stop.caught():
                    rc = await run_into_log(log, argv)
            except FileNotFoundError:
                log.emit(f"cs: command not found: {argv[0]}", output="stderr")
                rc = 127
            finally:
                ticker.cancel()
        if stop.stopped and stop.signum is not None:
            rc = 128 + stop.signum
            log.emit(f"cs: stopped by signal {stop.signum}", output="stderr")
        try:
            if send_end:
                log.end("success" if rc == 0 else "failed")
            else:
                log.spill(force=True)
                if log.lost or log.held:
                    raise OutboxFullError(f"the outbox's disk is full: {log.lost + log.held} log line(s) not kept")
        except (OutboxFullError, OutboxError) as exc:
            lost = f"{exc}; free space in CS_STATE_DIR ({session.outbox.state_dir})"
        if session.unavailable:
            lost = f"{session.unavailable}: the log of deployment {identity.deployment_id} was not published"
    if lost:  # last, after the delivery report: the command's own exit code stands
        click.echo(f"cs: error: {lost}", err=True)
    return rc


async def _tick(display: Any) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(0.5)
            display.tick()


__all__ = ["ExitCode", "stream"]

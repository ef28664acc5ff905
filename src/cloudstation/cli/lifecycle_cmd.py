"""``cs init | validate | build | deploy | up | destroy | status | plugins``: the local lifecycle commands.

Exit codes: 0 success, 1 a phase failed, 2 bad input (flags, config). With NATS configured, every
run publishes its deployment's events (``--deployment-id`` / ``--job-id`` set the identity).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cloudstation.errors import ConfigError, ExitCode
from cloudstation.vocabulary import COMPONENTS, Step

_FILE_HELP = "The project file (default: ./cloudstation.hcl)."


def _file_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-f",
        "--file",
        "file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("cloudstation.hcl"),
        help=_FILE_HELP,
    )(f)


def _run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--app", help="Only this app (default: every app, in file order)."),
        click.option("--deployment-id", help="Deployment id for the events (generated when omitted)."),
        click.option("--job-id", type=int, help="Numeric job id (deploymentJobId) for the events."),
        click.option("--service-id", help="serviceId for the events (default: the app name)."),
        click.option("--owner-id", default="", help="ownerId for the events."),
        click.option("--quiet", is_flag=True, help="Do not show the log."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (the log is not shown)."),
    ]
    for option in reversed(options):
        f = option(f)
    return _file_option(f)


def _load(file: Path) -> Any:
    from cloudstation.config import load_config
    from cloudstation.lifecycle.engine import Lifecycle
    from cloudstation.plugins.registry import PluginRegistry

    project = load_config(file, os.environ)
    from cloudstation.events.outbox import default_state_dir

    return Lifecycle(project, PluginRegistry(), base_dir=file.resolve().parent, state_dir=default_state_dir(os.environ))


@click.command()
@_file_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(file: Path, as_json: bool) -> None:
    """Check a project file and every plugin's config; exit 0 when valid, 2 otherwise."""
    lifecycle = _load(file)
    for app in lifecycle.apps(None):
        lifecycle.plugins(app)
    apps = {app.name: {block.kind: block.use for block in app.components()} for app in lifecycle.apps(None)}
    if as_json:
        import msgspec

        click.echo(
            msgspec.json.encode({"file": str(file), "project": lifecycle.project.project, "apps": apps}).decode()
        )
        return
    click.echo(f"{file}: valid (project {lifecycle.project.project}, {len(apps)} app(s))")
    for name, blocks in apps.items():
        click.echo(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in blocks.items()))


def _run_command(steps: tuple[Step, ...]) -> Callable[..., None]:
    def command(
        file: Path,
        app: str | None,
        deployment_id: str | None,
        job_id: int | None,
        service_id: str | None,
        owner_id: str,
        quiet: bool,
        as_json: bool,
    ) -> None:
        from cloudstation.cli.display import LogDisplay, choose_mode
        from cloudstation.events.contract import validate_deployment_id
        from cloudstation.events.session import EventSession
        from cloudstation.lifecycle.apps import app_identity, run_apps
        from cloudstation.redaction import Redactor

        if deployment_id:
            validate_deployment_id(deployment_id, field="--deployment-id")
        lifecycle = _load(file)
        apps = lifecycle.apps(app)
        session = EventSession(os.environ)
        redactor = Redactor([*lifecycle.project.sensitive_values, *session.secrets])
        display = LogDisplay(choose_mode(quiet=quiet or as_json, as_json=False))
        identity = functools.partial(
            app_identity, deployment_id=deployment_id, job_id=job_id, service_id=service_id, owner_id=owner_id
        )

        async def main() -> tuple[list[Any], int | None]:
            async with session:
                out = await run_apps(
                    lifecycle,
                    apps,
                    steps,
                    session=session,
                    identity=identity,
                    redactor=redactor,
                    echo=display,
                )
                await session.close(1.0 if out[1] else None)
                return out

        try:
            results, signum = asyncio.run(main())
        finally:
            display.close()
        _report(results, as_json, display)
        if signum is not None:
            raise click.exceptions.Exit(128 + signum)
        if not all(r.ok for r in results):
            raise click.exceptions.Exit(ExitCode.FAILED)

    return command


def _report(results: list[Any], as_json: bool, display: Any) -> None:
    if as_json:
        import msgspec

        click.echo(msgspec.json.encode([r.to_dict() for r in results]).decode())
        return
    for r in results:
        phases = ", ".join(f"{p.phase} {p.seconds:.2f}s" + ("" if p.ok else " FAILED") for p in r.phases)
        url = f" -> {r.deployment.url}" if r.deployment and r.deployment.url else ""
        verdict = "ok" if r.ok else f"failed: {r.error}"
        click.echo(f"{r.app} [{r.deployment_id}]: {verdict} ({phases}){url}", err=not r.ok)


def _make(name: str, steps: tuple[Step, ...], help_text: str) -> click.Command:
    func = _run_options(_run_command(steps))
    return click.command(name=name, help=help_text)(func)


build = _make("build", (Step.BUILD, Step.REGISTRY), "Build each app (and push it when the app has a registry block).")
deploy = _make("deploy", (Step.DEPLOY,), "Deploy each app's last built artifact.")
up = _make("up", COMPONENTS, "Build, push, deploy and release each app: the whole lifecycle.")


@click.command()
@_file_option
@click.option("--app", help="Only this app.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def destroy(file: Path, app: str | None, as_json: bool) -> None:
    """Stop and remove each app's deployment."""
    from cloudstation.events.buildlog import BuildLog
    from cloudstation.events.identity import DeploymentRef
    from cloudstation.redaction import Redactor

    lifecycle = _load(file)
    apps = lifecycle.apps(app)
    done = []

    def echo(line: Any) -> None:
        if not as_json:
            click.echo(line.content, nl=False)

    async def main() -> None:
        for a in apps:
            log = BuildLog(
                None, DeploymentRef("local", 0), redactor=Redactor(lifecycle.project.sensitive_values), echo=echo
            )
            await lifecycle.destroy(a, log)
            done.append(a.name)

    asyncio.run(main())
    if as_json:
        import msgspec

        click.echo(msgspec.json.encode({"destroyed": done}).decode())
    else:
        click.echo(f"destroyed: {', '.join(done)}")


@click.command()
@_file_option
@click.option("--app", help="Only this app.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def status(file: Path, app: str | None, as_json: bool) -> None:
    """Show what each app's platform reports (running, stopped, unknown)."""
    from cloudstation.events.buildlog import BuildLog
    from cloudstation.events.identity import DeploymentRef

    lifecycle = _load(file)
    apps = lifecycle.apps(app)

    async def main() -> list[tuple[str, Any]]:
        log = BuildLog(None, DeploymentRef("local", 0))
        return [(a.name, await lifecycle.status(a, log)) for a in apps]

    rows = asyncio.run(main())
    if as_json:
        import msgspec

        docs = [{"app": name, "state": st.state, "detail": st.detail} for name, st in rows]
        click.echo(msgspec.json.encode(docs).decode())
        return
    for name, st in rows:
        click.echo(f"{name}: {st.state}" + (f" ({st.detail})" if st.detail else ""))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plugins as JSON.")
def plugins(as_json: bool) -> None:
    """List the plugins found through the cloudstation.plugins entry points."""
    from cloudstation.plugins.registry import PluginRegistry

    registry = PluginRegistry()
    infos = []
    broken: list[tuple[str, str]] = []
    for name in registry.names:
        try:
            infos.append(registry.info(name))
        except ConfigError as exc:
            broken.append((name, str(exc)))
    if as_json:
        import msgspec

        docs = [
            {
                "name": i.name,
                "components": i.components,
                "config": [{"name": n, "type": t, "required": r} for n, t, r in i.fields],
                "description": i.description,
                "target": i.target,
                "distribution": i.distribution,
            }
            for i in infos
        ]
        click.echo(msgspec.json.encode(docs + [{"name": n, "error": e} for n, e in broken]).decode())
        return
    for name, error in broken:
        click.echo(f"{name:<11} cannot be used: {error}", err=True)
    for i in infos:
        fields = ", ".join(f"{n}{'' if r else '?'}: {t}" for n, t, r in i.fields) or "no config"
        click.echo(f"{i.name:<11} {'/'.join(i.components):<32} {i.description}")
        click.echo(f"{'':<11} config: {fields}  [{i.distribution or i.target}]")


@click.command()
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), help="Project folder."
)
@click.option("--force", is_flag=True, help="Overwrite an existing cloudstation.hcl.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(directory: Path, force: bool, as_json: bool) -> None:
    """Detect the project and write a commented cloudstation.hcl."""
    from cloudstation.lifecycle.init import write_project_file

    path = write_project_file(directory, force=force)
    if as_json:
        import msgspec

        click.echo(msgspec.json.encode({"file": str(path)}).decode())
        return
    click.echo(f"wrote {path}; check it with `cs validate -f {path}`")


__all__ = ["build", "deploy", "destroy", "init", "plugins", "status", "sys", "up", "validate"]

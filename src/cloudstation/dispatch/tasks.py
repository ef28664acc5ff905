"""The deploy tasks: ``deploy-repository`` / ``redeploy-repository`` and ``deploy-image``.

Repository: clone (or download + safe extraction of a ``local_upload``) → Vault secrets into the build env
→ builder chain → registry push (unless ``disablePush``) → domains + service update → deploy → release.
Image: ``detect`` (ports from ``docker image inspect``, sorted, else ``[3000]``; only without networks)
→ domains + service update → deploy → release. Each phase is a backend step (best-effort updates).
The worker publishes the start and the outcome around these bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import msgspec

from cloudstation.backend.client import BackendError, NetworkEntry
from cloudstation.config.model import ProjectConfig
from cloudstation.dispatch.builders import build_with_fallback, candidates
from cloudstation.dispatch.context import TaskContext
from cloudstation.dispatch.packvars import has_health_check, network_entry
from cloudstation.dispatch.params import Task
from cloudstation.dispatch.params_models import DeployImageParams, DeployParamsBase, DeployRepositoryParams, NetworkPort
from cloudstation.dispatch.project import APP, FILENAME, render
from cloudstation.errors import CsError
from cloudstation.lifecycle.engine import Lifecycle, RunResult, Step
from cloudstation.plugins.base import Artifact
from cloudstation.plugins.registry import PluginRegistry
from cloudstation.secrets.vault import LinkedSecretPath, VaultSettings, fetch_secrets
from cloudstation.sources.git import clone_repository
from cloudstation.sources.upload import fetch_upload

DEFAULT_PORT = 3000
DETECT_TIMEOUT = 60.0


class TaskError(CsError):
    """A task step failed; the message is one line and secret-free."""


def task_body(kind: Task, params: DeployParamsBase) -> Callable[[TaskContext], Awaitable[None]]:
    """The coroutine function that runs ``kind`` for ``params``."""
    if isinstance(params, DeployImageParams):
        image_params = params
        return lambda ctx: deploy_image(ctx, image_params)
    assert isinstance(params, DeployRepositoryParams)
    repo_params = params
    return lambda ctx: deploy_repository(ctx, repo_params)


# --------------------------------------------------------------------------------------- repository


class _LogRunner:
    """A ``CommandRunner`` for the sources room whose output goes to the deployment log."""

    def __init__(self, ctx: TaskContext, phase: str) -> None:
        self.ctx = ctx
        self.phase = phase

    async def __call__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> int:
        return await self.ctx.log.run(argv, env=env, cwd=cwd, phase=self.phase)


async def deploy_repository(ctx: TaskContext, params: DeployRepositoryParams) -> None:
    """Fetch, build (with fallback), push, allocate domains, deploy, release."""
    source = ctx.work_dir / "source"
    async with ctx.step("clone"):
        if params.source_type == "local_upload":
            ctx.say("clone: downloading the uploaded source archive")
            await fetch_upload(params.source_url, source)
            ctx.say("clone: archive extracted")
        else:
            ctx.say(f"clone: {params.repository} (branch {params.branch}, provider {params.provider})")
            await clone_repository(
                params.repository,
                params.branch,
                source,
                token=params.git_pass,
                provider=params.provider,
                env=ctx.env,
                runner=_LogRunner(ctx, "clone"),
            )
    app_rel = _app_path(source, params.build.root_directory, ctx.work_dir)
    registry = PluginRegistry()
    async with ctx.step("build"):
        build_env = await _vault_env(ctx, params)
        builders = candidates(params.build.builder, ctx.work_dir / app_rel, params.build.dockerfile_path)

        def load(builder: str) -> ProjectConfig:
            project = render(params, app_path=app_rel, builder=builder, build_env=build_env)
            return _loaded(ctx, project.load(ctx.work_dir / FILENAME))

        built = await build_with_fallback(ctx, builders, load, registry)
    app = built.project.apps[APP]
    if app.registry is not None:
        async with ctx.step("registry"):
            await _run_step(built.lifecycle, "registry", ctx, built.result)
    else:
        ctx.say("registry: push skipped (disablePush, or the build made no image)", phase="registry")
    artifact = built.result.artifact
    assert artifact is not None
    async with ctx.step("deploy"):
        ports = artifact.ports
        networks = list(params.networks) or [_public_http(port) for port in ports]
        networks = await allocate_domains(ctx, params, networks)
        project = render(params, app_path=app_rel, builder=built.builder, build_env=build_env, networks=networks)
        await _deploy(ctx, _loaded(ctx, project.load(ctx.work_dir / FILENAME)), registry, artifact)
    async with ctx.step("release"):
        ctx.say(f"release: {artifact.ref} deployed as {params.job_id}")


def _app_path(source: Path, root_directory: str, work_dir: Path) -> str:
    """The app directory relative to the work dir: ``source/<rootDirectory>``, checked to stay inside."""
    root = root_directory.strip().strip("/")
    rel = PurePosixPath(root) if root else PurePosixPath(".")
    if rel.is_absolute() or ".." in rel.parts:
        raise TaskError('params: field "build.rootDirectory" must be a relative path inside the repository')
    path = (source / rel).resolve()
    if not path.is_relative_to(source.resolve()) or not path.is_dir():
        raise TaskError("build.rootDirectory: no such directory in the source")
    return str(path.relative_to(work_dir.resolve()))


async def _vault_env(ctx: TaskContext, params: DeployParamsBase) -> dict[str, str]:
    """Vault secrets for the build env (values added to the redaction set); ``{}`` without Vault."""
    settings = VaultSettings(
        address=params.vault_address,
        role_id=params.role_id,
        secret_id=params.secret_id,
        secrets_path=params.secrets_path,
        shared_secret_path=params.shared_secret_path,
        linked_paths=tuple(
            LinkedSecretPath(p.prefix, p.secret_path) for p in params.vault_linked_secret_paths if p.secret_path
        ),
    )
    if not settings.enabled:
        return {}
    ctx.add_secrets(*settings.credentials())
    ctx.say("build: reading secrets from Vault")
    secrets = await asyncio.to_thread(fetch_secrets, settings)
    ctx.add_secrets(*secrets.values())
    build = params.build if isinstance(params, DeployRepositoryParams) else None
    static = build.static_build_env if build is not None else {}
    merged = {key: value for key, value in secrets.items() if key not in static}  # never overwrite
    ctx.say(f"build: {len(merged)} secret(s) from Vault added to the build environment")
    return merged


def _loaded(ctx: TaskContext, project: ProjectConfig) -> ProjectConfig:
    ctx.add_secrets(*project.sensitive_values)
    return project


async def _run_step(lifecycle: Lifecycle, step: Step, ctx: TaskContext, result: RunResult) -> None:
    app = lifecycle.project.apps[APP]
    await lifecycle.run(app, (step,), ctx.log, result)
    if not result.ok:
        raise TaskError(f"{step} failed: {result.error}")


async def _deploy(ctx: TaskContext, project: ProjectConfig, registry: PluginRegistry, artifact: Artifact) -> None:
    lifecycle = Lifecycle(project, registry, base_dir=ctx.work_dir, state_dir=ctx.work_dir / "state")
    lifecycle.plugins(project.apps[APP])
    result = RunResult(app=APP, deployment_id=ctx.deployment_id, artifact=artifact)
    await _run_step(lifecycle, "deploy", ctx, result)


# ------------------------------------------------------------------------------------------ domains


def _public_http(port: int) -> NetworkPort:
    return NetworkPort(port_number=port, port_type="http", public=True)


def network_entries(networks: Sequence[NetworkPort]) -> list[NetworkEntry]:
    """The network list ``/api/local/service-update/`` takes."""
    entries: list[NetworkEntry] = []
    for port in networks:
        # the check the pack renders (packvars): has_health_check is a type string, as in the original
        check = network_entry(port)["health_check"]
        entry: NetworkEntry = {
            "port": port.port_number,
            "type": port.port_type or "http",
            "public": port.public,
            "domain": port.domain,
            "has_health_check": has_health_check(port) or "http",
            "health_check": check,
        }
        entries.append(entry)
    return entries


async def allocate_domains(
    ctx: TaskContext, params: DeployParamsBase, networks: Sequence[NetworkPort]
) -> list[NetworkPort]:
    """Ask the backend for a domain for each public http port without one, then update the service."""
    out = list(networks)
    if not out:
        return out
    if ctx.backend is None:
        ctx.warn("no backend configured (backendUrl/accessToken): domains not allocated, service not updated")
        return out
    for index, port in enumerate(out):
        if port.public and not port.domain and (port.port_type or "http") == "http":
            try:
                domain = await ctx.backend.ask_domain(params.service_id)
            except BackendError as exc:
                raise TaskError(f"domain allocation for port {port.port_number} failed: {exc}") from None
            out[index] = msgspec.structs.replace(port, domain=domain)
            ctx.say(f"deploy: port {port.port_number} gets domain {domain}")
    try:
        await ctx.backend.update_service(
            params.service_id,
            network_entries(out),
            docker_user=params.docker_user,
            cmd=params.command,
            entrypoint=" ".join(params.entrypoint),
        )
    except BackendError as exc:
        ctx.warn(f"service update not recorded by the backend: {exc}")
    return out


# -------------------------------------------------------------------------------------------- image


def image_ref(params: DeployParamsBase) -> str:
    """``imageName:imageTag`` (``imageName`` alone when it already has a tag or digest, or no tag is given)."""
    name = params.image_name.strip()
    tag = params.image_tag.strip()
    last = name.rsplit("/", 1)[-1]
    if not tag or "@" in name or ":" in last:
        return name
    return f"{name}:{tag}"


async def detect_ports(ctx: TaskContext, image: str) -> list[int]:
    """The image's exposed ports from ``docker image inspect`` (sorted), else ``[3000]``."""
    argv = ["docker", "image", "inspect", "--format", "{{json .Config.ExposedPorts}}", image]
    ctx.say(f"detect: {' '.join(argv)}", phase="detect")
    env = {k: v for k, v in ctx.env.items() if not k.startswith("NOMAD_META_")}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError:
        ctx.say(f"detect: docker is not available; using port {DEFAULT_PORT}", phase="detect")
        return [DEFAULT_PORT]
    try:
        async with asyncio.timeout(DETECT_TIMEOUT):
            out, _ = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        raise
    ports = parse_exposed_ports(out.decode("utf-8", "replace")) if proc.returncode == 0 else []
    if not ports:
        ctx.say(f"detect: no exposed ports found; using port {DEFAULT_PORT}", phase="detect")
        return [DEFAULT_PORT]
    ctx.say(f"detect: exposed ports {', '.join(map(str, ports))}", phase="detect")
    return ports


def parse_exposed_ports(text: str) -> list[int]:
    """``{"8080/tcp": {}, ...}`` → sorted unique port numbers (anything else → ``[]``)."""
    try:
        doc = json.loads(text.strip() or "null")
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    ports: set[int] = set()
    for key in doc:
        number = str(key).split("/", 1)[0]
        if number.isdigit() and 0 < int(number) < 65536:
            ports.add(int(number))
    return sorted(ports)


async def deploy_image(ctx: TaskContext, params: DeployImageParams) -> None:
    """``detect`` (only without networks) → domains + service update → deploy → release."""
    image = image_ref(params)
    networks = list(params.networks)
    if not networks:
        ctx.log.phase = "detect"
        networks = [_public_http(port) for port in await detect_ports(ctx, image)]
    artifact = Artifact(kind="image", ref=image, ports=tuple(n.port_number for n in networks))
    registry = PluginRegistry()
    async with ctx.step("deploy"):
        networks = await allocate_domains(ctx, params, networks)
        project = render(params, app_path=".", builder="noop", networks=networks)
        await _deploy(ctx, _loaded(ctx, project.load(ctx.work_dir / FILENAME)), registry, artifact)
    async with ctx.step("release"):
        ctx.say(f"release: {image} deployed as {params.job_id}")

"""The deploy tasks: ``deploy-repository`` / ``redeploy-repository`` and ``deploy-image``.

Repository: clone (or download + safe extraction of a ``local_upload``) → Vault secrets (``secretsPath``
only) into the build env → builder chain → port detection of the built image → domains + service update
→ registry push (unless ``disablePush``) → deploy. Image: ``detect`` (only without networks) → domains +
service update → deploy. The backend steps, in the order the backend shows them: ``clone`` (typed
``local_upload`` for an upload), ``build``, ``registry`` (when there is a push), ``deploy`` for a repository
(``deployment_type`` ``repository``); only ``deploy`` for an image (``image``). There is no release step:
the generated project has no ``release`` block, and the step is reported only for a project with one.
The worker publishes the start and the outcome around these bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from cloudstation.config.model import ProjectConfig
from cloudstation.dispatch.builders import build_with_fallback, candidates, find_dockerfile
from cloudstation.dispatch.context import TaskContext
from cloudstation.dispatch.domains import allocate_domains, image_networks, repository_networks
from cloudstation.dispatch.params_models import DeployImageParams, DeployParamsBase, DeployRepositoryParams
from cloudstation.dispatch.ports import detect_ports
from cloudstation.dispatch.project import APP, FILENAME, DispatchProject
from cloudstation.errors import CsError
from cloudstation.lifecycle.engine import Lifecycle, RunResult
from cloudstation.plugins.base import Artifact
from cloudstation.plugins.childlog import run_into_log
from cloudstation.plugins.registry import PluginRegistry
from cloudstation.secrets.vault import VaultSettings, fetch_secrets
from cloudstation.sources.git import clone_repository
from cloudstation.sources.upload import fetch_upload
from cloudstation.vocabulary import Step


class TaskError(CsError):
    """A task step failed; the message is one line and secret-free."""


def task_body(params: DeployParamsBase) -> Callable[[TaskContext], Awaitable[None]]:
    """The coroutine function that runs the task ``params`` are for (repository or image)."""
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
        return await run_into_log(self.ctx.log, argv, env=env, cwd=cwd, phase=self.phase)


async def deploy_repository(ctx: TaskContext, params: DeployRepositoryParams) -> None:
    """Fetch, build (with fallback), detect ports, allocate domains, push, deploy."""
    ctx.deployment_type = "repository"
    source = ctx.work_dir / "source"
    if params.source_type == "local_upload":
        async with ctx.step(Step.CLONE, deployment_type="local_upload"):
            ctx.say("clone: downloading the uploaded source archive")
            skipped: list[tuple[str, str]] = []
            await fetch_upload(params.source_url, source, on_skip=lambda name, kind: skipped.append((name, kind)))
            for name, kind in skipped:
                ctx.warn(f"upload member {name!r} skipped: {kind} files are not extracted")
            ctx.say("clone: archive extracted")
    else:
        async with ctx.step(Step.CLONE):
            ctx.say(f"clone: {params.repository} (branch {params.branch}, provider {params.provider or 'github'})")
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
    async with ctx.step(Step.BUILD):
        build_env = await _vault_env(ctx, params)
        builders = candidates(params.build.builder, ctx.work_dir / app_rel, params.build.dockerfile_path)
        project = DispatchProject(
            params,
            app_path=app_rel,
            file=ctx.work_dir / FILENAME,
            build_env=build_env,
            env=ctx.env,
            dockerfile=find_dockerfile(ctx.work_dir / app_rel, params.build.dockerfile_path),
        )

        def load(builder: str) -> ProjectConfig:
            return _loaded(ctx, project.render(builder).config)

        built = await build_with_fallback(ctx, builders, load, registry)
    artifact = built.result.artifact
    assert artifact is not None
    ports = await _built_ports(ctx, artifact, built.builder, ctx.work_dir / app_rel)
    networks = list(params.networks) or repository_networks(ports)
    networks = await allocate_domains(ctx, params, networks, detected=not params.networks)
    app = built.project.apps[APP]
    if app.registry is not None:
        async with ctx.step(Step.REGISTRY):
            await _run_step(built.lifecycle, Step.REGISTRY, ctx, built.result)
    else:
        ctx.say("registry: push skipped (disablePush, or the build made no image)", phase="registry")
    async with ctx.step(Step.DEPLOY):
        # The project as it deploys (the final networks) is the one written to the work dir.
        await _deploy(ctx, _loaded(ctx, project.render(built.builder, networks).write()), registry, artifact)
    ctx.say(f"release: {artifact.ref} deployed as {params.job_id}", phase="release")


async def _built_ports(ctx: TaskContext, artifact: Artifact, builder: str, source: Path) -> tuple[int, ...]:
    """The ports of a built image (see :mod:`cloudstation.dispatch.ports`); a directory's own ports."""
    if artifact.kind != "image":
        return artifact.ports
    # A builder that read the image's config after building (its ``image_id``) has its ports already.
    read = artifact.ports if artifact.metadata.get("image_id") else None
    detected = await detect_ports(
        artifact.ref,
        ctx.env,
        lambda text: ctx.say(text, phase="build"),
        builder=builder,
        source=source,
        read_by_builder=read,
    )
    return detected.ports


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
    """Vault secrets of ``secretsPath`` for the build env (values added to the redaction set); ``{}`` without Vault.

    Only ``secretsPath`` is read at build time: ``sharedSecretPath`` and
    ``vaultLinkedSecretPaths`` are resolved by the job at run time (``kv/data/<projectId>/<name>``, see
    the pack variables), where they are not raw Vault API paths.
    """
    settings = VaultSettings(
        address=params.vault_address,
        role_id=params.role_id,
        secret_id=params.secret_id,
        secrets_path=params.secrets_path,
    )
    if not settings.enabled:
        return {}
    ctx.add_secrets(*settings.credentials())
    ctx.say("build: reading secrets from Vault")
    secrets = await asyncio.to_thread(fetch_secrets, settings)
    ctx.add_secrets(*secrets.values())
    static = params.build.static_build_env
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
    await _run_step(lifecycle, Step.DEPLOY, ctx, result)


# -------------------------------------------------------------------------------------------- image


def requested_image(params: DeployParamsBase) -> str:
    """``imageName:imageTag`` (``imageName`` alone when it already has a tag or digest, or no tag is given)."""
    name = params.image_name.strip()
    tag = params.image_tag.strip()
    last = name.rsplit("/", 1)[-1]
    if not tag or "@" in name or ":" in last:
        return name
    return f"{name}:{tag}"


async def deploy_image(ctx: TaskContext, params: DeployImageParams) -> None:
    """``detect`` (only without networks) → domains + service update → deploy."""
    ctx.deployment_type = "image"
    image = requested_image(params)
    networks = list(params.networks)
    if not networks:
        ctx.log.phase = "detect"
        detected = await detect_ports(image, ctx.env, lambda text: ctx.say(text, phase="detect"))
        networks = await allocate_domains(ctx, params, image_networks(detected.ports), detected=True)
    artifact = Artifact(kind="image", ref=image, ports=tuple(n.port_number for n in networks))
    registry = PluginRegistry()
    async with ctx.step(Step.DEPLOY):
        project = DispatchProject(params, app_path=".", file=ctx.work_dir / FILENAME, env=ctx.env)
        await _deploy(ctx, _loaded(ctx, project.render("noop", networks).write()), registry, artifact)
    ctx.say(f"release: {image} deployed as {params.job_id}", phase="release")

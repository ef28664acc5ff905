"""The lifecycle engine: runs an app's build → registry → deploy → release through its plugins.

Each phase sets the log stream's phase tag, announces itself, times itself, and turns any plugin
failure into a failed :class:`PhaseResult` (the run stops there). Plugins are created, and their
config validated, before anything runs, so a config error never leaves a half-done deployment.
The last artifact and deployment of each app are remembered in the state dir (``cs deploy`` after
``cs build``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cloudstation.config.model import App, ProjectConfig
from cloudstation.errors import CsError, UsageError
from cloudstation.events.buildlog import BuildLog
from cloudstation.plugins.base import (
    Artifact,
    Builder,
    ComponentPlugin,
    Deployment,
    Platform,
    PluginContext,
    Registry,
    ReleaseManager,
    Status,
)
from cloudstation.plugins.registry import PluginRegistry
from cloudstation.vocabulary import Step


@dataclass
class PhaseResult:
    phase: str
    plugin: str
    seconds: float = 0.0
    ok: bool = False
    error: str = ""


@dataclass
class RunResult:
    """What happened to one app in one run; filled in as the run goes (so it survives a cancel)."""

    app: str
    deployment_id: str
    phases: list[PhaseResult] = field(default_factory=list)
    artifact: Artifact | None = None
    deployment: Deployment | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(p.ok for p in self.phases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "deployment_id": self.deployment_id,
            "ok": self.ok,
            "error": self.error,
            "phases": [asdict(p) for p in self.phases],
            "artifact": asdict(self.artifact) if self.artifact else None,
            "deployment": asdict(self.deployment) if self.deployment else None,
        }


class Lifecycle:
    """Runs the phases of the apps of one project."""

    def __init__(self, project: ProjectConfig, registry: PluginRegistry, *, base_dir: Path, state_dir: Path) -> None:
        self.project = project
        self.registry = registry
        self.base_dir = base_dir
        self.state_dir = state_dir

    def apps(self, name: str | None) -> list[App]:
        """The app named ``name`` (an error listing the apps if there is none), or every app."""
        if name is None:
            return list(self.project.apps.values())
        if name not in self.project.apps:
            known = ", ".join(self.project.apps)
            raise UsageError(f"no app {name!r} in {self.project.file} (apps: {known})")
        return [self.project.apps[name]]

    def plugins(self, app: App) -> dict[Step, ComponentPlugin]:
        """Every plugin of ``app``, created and config-validated (ConfigError with file:line)."""
        return {block.kind: self.registry.create(block) for block in app.components()}

    def context(self, app: App, log: BuildLog, deployment_id: str) -> PluginContext:
        return PluginContext(
            project=self.project.project,
            app=app.name,
            app_path=(self.base_dir / app.path).resolve(),
            state_dir=self.state_dir,
            log=log,
            env=dict(app.env),
            labels=dict(app.labels),
            deployment_id=deployment_id,
        )

    async def run(self, app: App, steps: Sequence[Step], log: BuildLog, result: RunResult) -> RunResult:
        """Run ``steps`` (skipping registry/release when the app has none) and fill ``result``."""
        plugins = self.plugins(app)
        ctx = self.context(app, log, result.deployment_id)
        artifact = result.artifact
        if "build" not in steps and "deploy" in steps and artifact is None:
            artifact = self._load_artifact(app)
        for step in steps:
            block = app.component(step)
            if block is None:
                continue
            phase = PhaseResult(phase=step, plugin=block.use)
            result.phases.append(phase)
            log.phase = step
            log.emit(f"==> {step}: {block.use}")
            started = time.monotonic()
            try:
                artifact = await _perform(step, plugins[step], ctx, artifact, result)
                phase.ok = True
            except asyncio.CancelledError:
                phase.error = result.error = "stopped by a signal"
                log.emit(f"{step} stopped by a signal", output="stderr")
                raise
            except CsError as exc:
                phase.error = result.error = str(exc)
            except Exception as exc:  # a plugin bug: report it, don't crash the run
                phase.error = result.error = f"internal error in plugin {block.use!r}: {type(exc).__name__}"
            finally:
                phase.seconds = time.monotonic() - started
            if not phase.ok:
                log.emit(f"error: {step} failed: {phase.error}", output="stderr")
                return result
            log.emit(f"{step} finished in {phase.seconds:.2f}s")
            self._remember(app, result)
        return result

    async def destroy(self, app: App, log: BuildLog) -> None:
        platform = self.registry.create_platform(app.deploy)
        log.phase = "deploy"
        await platform.destroy(self.context(app, log, ""))
        self._forget(app)

    async def status(self, app: App, log: BuildLog) -> Status:
        platform = self.registry.create_platform(app.deploy)
        status: Status = await platform.status(self.context(app, log, ""))
        return status

    # -- remembered state --------------------------------------------------------------------------

    def _record(self, app: App) -> Path:
        return self.state_dir / "apps" / self.project.project / f"{app.name}.json"

    def _remember(self, app: App, result: RunResult) -> None:
        path = self._record(app)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"artifact": asdict(result.artifact) if result.artifact else None}
        if result.deployment is not None:
            doc["deployment"] = asdict(result.deployment)
        path.write_text(json.dumps(doc, indent=2))

    def _load_artifact(self, app: App) -> Artifact:
        path = self._record(app)
        try:
            doc = json.loads(path.read_text())["artifact"]
            return Artifact(**{**doc, "ports": tuple(doc.get("ports", ()))})
        except (OSError, KeyError, TypeError, ValueError):
            raise UsageError(f"app {app.name!r} has no build artifact yet: run `cs build` first") from None

    def _forget(self, app: App) -> None:
        path = self._record(app)
        if path.exists():
            doc = json.loads(path.read_text())
            doc.pop("deployment", None)
            path.write_text(json.dumps(doc, indent=2))


async def _perform(
    step: Step, plugin: ComponentPlugin, ctx: PluginContext, artifact: Artifact | None, result: RunResult
) -> Artifact | None:
    """One step through the component interface the registry checked ``plugin`` has; the artifact after it."""
    if step == Step.BUILD:
        assert isinstance(plugin, Builder)
        result.artifact = await plugin.build(ctx)
        return result.artifact
    if step == Step.REGISTRY:
        assert isinstance(plugin, Registry) and artifact is not None
        result.artifact = await plugin.push(ctx, artifact)
        return result.artifact
    if step == Step.DEPLOY:
        assert isinstance(plugin, Platform) and artifact is not None
        result.deployment = await plugin.deploy(ctx, artifact)
        return artifact
    assert isinstance(plugin, ReleaseManager) and result.deployment is not None, "release needs a deployment"
    await plugin.release(ctx, result.deployment)
    return artifact

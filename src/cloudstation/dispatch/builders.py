"""The builder chain: the user's builder, then ``csdocker`` if a Dockerfile exists, ``railpack``, ``nixpacks``.

Owns the candidate order and the attempts: each candidate gets its own project (only its ``build`` block
differs, see :mod:`cloudstation.dispatch.project`) and runs the lifecycle's ``build`` step; a failure
(plugin error, missing tool, invalid config) is logged and the next candidate is tried. The first
success wins; when all fail, the error names each attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cloudstation.config.model import ProjectConfig
from cloudstation.dispatch.context import TaskContext
from cloudstation.errors import ConfigError, CsError
from cloudstation.lifecycle.engine import Lifecycle, RunResult
from cloudstation.plugins.registry import PluginRegistry
from cloudstation.vocabulary import Step

FALLBACKS = ("railpack", "nixpacks")
# The Dockerfile names a source may use, the usual one first, then production before development.
DOCKERFILE_NAMES = (
    "Dockerfile",
    "dockerfile",
    "Dockerfile.prod",
    "Dockerfile.production",
    "Dockerfile.dev",
    "Dockerfile.development",
)


class BuildFailedError(CsError):
    """Every builder of the chain failed."""


@dataclass
class Built:
    """The winning builder, its loaded project and the lifecycle result holding the artifact."""

    builder: str
    project: ProjectConfig
    lifecycle: Lifecycle
    result: RunResult


def find_dockerfile(source_dir: Path, dockerfile: str = "") -> str:
    """The Dockerfile a docker build uses: ``dockerfile`` when given, else the first of
    :data:`DOCKERFILE_NAMES` present in ``source_dir``; ``""`` when there is none."""
    if dockerfile.strip():
        return dockerfile.strip() if (source_dir / dockerfile.strip()).is_file() else ""
    return next((name for name in DOCKERFILE_NAMES if (source_dir / name).is_file()), "")


def candidates(user_builder: str, source_dir: Path, dockerfile: str) -> list[str]:
    """Builders to try, in order, without repeats."""
    order: list[str] = []
    if user_builder.strip():
        order.append(user_builder.strip())
    if find_dockerfile(source_dir, dockerfile):
        order.append("csdocker")
    order.extend(FALLBACKS)
    return list(dict.fromkeys(order))


async def build_with_fallback(
    ctx: TaskContext,
    builders: list[str],
    load: Callable[[str], ProjectConfig],
    registry: PluginRegistry,
) -> Built:
    """Try each of ``builders`` (``load(builder)`` gives its project) until one builds."""
    failures: list[str] = []
    for attempt, builder in enumerate(builders, start=1):
        ctx.say(f"build: attempt {attempt}/{len(builders)} with builder {builder}", phase="build")
        try:
            project = load(builder)
            lifecycle = Lifecycle(project, registry, base_dir=ctx.work_dir, state_dir=ctx.work_dir / "state")
            app = next(iter(project.apps.values()))
            lifecycle.plugins(app)  # config errors before anything runs
        except ConfigError as exc:
            reason = str(exc).rsplit(": ", 1)[-1] if ": " in str(exc) else str(exc)
            failures.append(f"{builder}: {reason}")
            ctx.warn(f"builder {builder} cannot be used: {reason}")
            continue
        result = RunResult(app=app.name, deployment_id=ctx.deployment_id)
        await lifecycle.run(app, (Step.BUILD,), ctx.log, result)
        if result.ok and result.artifact is not None:
            ctx.say(f"build: builder {builder} succeeded ({result.artifact.kind} {result.artifact.ref})", phase="build")
            return Built(builder, project, lifecycle, result)
        failures.append(f"{builder}: {result.error or 'no artifact'}")
        if attempt < len(builders):
            ctx.warn(f"builder {builder} failed; trying {builders[attempt]}")
    raise BuildFailedError("every builder failed (" + "; ".join(failures) + ")")

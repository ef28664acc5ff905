"""What a plugin is: the four component interfaces, their results, and the context every call gets.

Third-party plugins import these names from :mod:`cloudstation.plugin`, the public face; the builtins
import them from here (the plugins room cannot import the face that re-exports it).

A plugin is a class with a ``name``, a typed ``Config`` (a msgspec Struct: its fields are the attributes
a user may write in the component block) and one or more of the component methods:

- Builder: ``async build(ctx) -> Artifact``
- Registry: ``async push(ctx, artifact) -> Artifact`` (the pushed reference, with its digest)
- Platform: ``async deploy(ctx, artifact) -> Deployment``; ``async destroy(ctx)``; ``async status(ctx)``
- ReleaseManager: ``async release(ctx, deployment)``

Plugins run every subprocess through ``ctx.run`` (the deployment's build log: phase-tagged, redacted,
cancellable), report progress with ``ctx.say``, keep a secret out of the log with ``ctx.add_secret``,
and raise :class:`PluginError` with a clear message.

The four Protocols below are the typed seam between the registry and the lifecycle:
``PluginRegistry.create`` returns a :data:`ComponentPlugin`, ``create_platform`` a :class:`Platform`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeAlias, runtime_checkable

import msgspec

from cloudstation.errors import CsError
from cloudstation.events.buildlog import BuildLog
from cloudstation.plugins.childlog import run_into_log
from cloudstation.vocabulary import Step

#: The methods each component (a lifecycle :class:`~cloudstation.vocabulary.Step`) requires of a plugin class.
COMPONENT_METHODS: dict[Step, tuple[str, ...]] = {
    Step.BUILD: ("build",),
    Step.REGISTRY: ("push",),
    Step.DEPLOY: ("deploy", "destroy", "status"),
    Step.RELEASE: ("release",),
}


class PluginError(CsError):
    """A plugin failed; the message says what and how to fix it, and never carries a secret."""


class PluginConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Base of every plugin's config: unknown attributes are errors."""


class NoConfig(PluginConfig, frozen=True):
    """For plugins that take no attributes."""


@dataclass(frozen=True)
class Artifact:
    """What a builder produced (and a registry pushed).

    ``kind`` is ``"image"`` (``ref`` is ``name:tag``; ``digest`` once pushed) or ``"directory"``
    (``ref`` is a path).
    """

    kind: Literal["image", "directory"]
    ref: str
    digest: str = ""
    ports: tuple[int, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """What a platform deployed: an id, and a URL when it serves one."""

    id: str
    url: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """A platform's view of the app."""

    state: Literal["running", "stopped", "unknown"]
    detail: str = ""


@dataclass
class PluginContext:
    """Everything a plugin call may use. One per app and component call."""

    project: str
    app: str
    app_path: Path
    state_dir: Path
    log: BuildLog
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    deployment_id: str = ""

    async def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        stdin: bytes | None = None,
        capture: list[str] | None = None,
    ) -> int:
        """Run a subprocess through the deployment's log; a missing executable is a PluginError.

        With ``capture``, the (redacted) lines it printed are also appended to that list.
        """
        try:
            return await run_into_log(
                self.log, argv, env=env, cwd=cwd if cwd is not None else self.app_path, stdin=stdin, capture=capture
            )
        except FileNotFoundError:
            raise PluginError(f"{argv[0]} is not installed (not found on PATH)") from None

    async def check(
        self,
        argv: Sequence[str],
        *,
        what: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        stdin: bytes | None = None,
    ) -> None:
        """:meth:`run`, raising ``PluginError("<what> failed (exit N)")`` on a non-zero exit."""
        rc = await self.run(argv, env=env, cwd=cwd, stdin=stdin)
        if rc != 0:
            raise PluginError(f"{what} failed (exit {rc})")

    def say(self, text: str) -> None:
        """A progress line of cs's own, in the deployment log."""
        self.log.emit(text)

    def add_secret(self, *values: str) -> None:
        """Replace each of ``values`` by ``***`` in this deployment's log from now on (empty ones are ignored)."""
        self.log.redactor.add(*values)

    def plugin_state(self, plugin: str) -> Path:
        """A private directory for ``plugin``'s state about this app (created on demand)."""
        path = self.state_dir / "plugins" / plugin / self.project / self.app
        path.mkdir(parents=True, exist_ok=True)
        return path


@runtime_checkable
class Builder(Protocol):
    async def build(self, ctx: PluginContext) -> Artifact: ...


@runtime_checkable
class Registry(Protocol):
    async def push(self, ctx: PluginContext, artifact: Artifact) -> Artifact: ...


@runtime_checkable
class Platform(Protocol):
    async def deploy(self, ctx: PluginContext, artifact: Artifact) -> Deployment: ...

    async def destroy(self, ctx: PluginContext) -> None: ...

    async def status(self, ctx: PluginContext) -> Status: ...


@runtime_checkable
class ReleaseManager(Protocol):
    async def release(self, ctx: PluginContext, deployment: Deployment) -> None: ...


#: An instance of a plugin, seen through the component it was created for.
ComponentPlugin: TypeAlias = Builder | Registry | Platform | ReleaseManager


class Plugin:
    """Convenience base class: holds the validated config. Subclasses set ``name`` and ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type[PluginConfig]] = NoConfig
    description: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        self.config = config


def components_of(plugin_class: type) -> list[Step]:
    """The components a plugin class implements (it defines every method the component needs)."""
    return [
        comp
        for comp, methods in COMPONENT_METHODS.items()
        if all(callable(getattr(plugin_class, m, None)) for m in methods)
    ]

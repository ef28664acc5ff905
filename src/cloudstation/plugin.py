"""The public face for plugin authors: everything a third-party plugin imports from cs, in one module.

A plugin is a class with a ``name``, a typed ``Config`` (a :class:`PluginConfig` Struct whose fields are
the attributes a user may write) and one or more component methods (Builder ``build``, Registry
``push``, Platform ``deploy``/``destroy``/``status``, ReleaseManager ``release``), registered through an
entry point in the ``cloudstation.plugins`` group::

    from cloudstation.plugin import Artifact, Plugin, PluginConfig, PluginContext

    class Greet(Plugin):
        name = "greet"

        async def build(self, ctx: PluginContext) -> Artifact:
            await ctx.check(["/bin/echo", "hello"], what="greeting")
            return Artifact(kind="directory", ref=str(ctx.app_path))

Inside a call, :class:`PluginContext` runs subprocesses through the deployment's log (``run``, ``check``),
reports progress (``say``), keeps a secret out of the log (``add_secret``) and gives a private state
directory (``plugin_state``). A failure is a :class:`PluginError` whose message says what to fix and
carries no secret. Names not listed here are internal and may change.
"""

from __future__ import annotations

from cloudstation.plugins.base import (
    Artifact,
    Builder,
    ComponentPlugin,
    Deployment,
    NoConfig,
    Platform,
    Plugin,
    PluginConfig,
    PluginContext,
    PluginError,
    Registry,
    ReleaseManager,
    Status,
)

__all__ = [
    "Artifact",
    "Builder",
    "ComponentPlugin",
    "Deployment",
    "NoConfig",
    "Platform",
    "Plugin",
    "PluginConfig",
    "PluginContext",
    "PluginError",
    "Registry",
    "ReleaseManager",
    "Status",
]

"""``noop``: every component, doing nothing (placeholders, tests, dry runs)."""

from __future__ import annotations

from typing import ClassVar

from cloudstation.plugins.base import Artifact, Deployment, Plugin, PluginContext, Status


class Noop(Plugin):
    """Does nothing, successfully, for any component."""

    name: ClassVar[str] = "noop"
    description: ClassVar[str] = "Does nothing, successfully (any component)."

    async def build(self, ctx: PluginContext) -> Artifact:
        ctx.say("noop: nothing to build")
        return Artifact(kind="directory", ref=str(ctx.app_path))

    async def push(self, ctx: PluginContext, artifact: Artifact) -> Artifact:
        ctx.say("noop: nothing to push")
        return artifact

    async def deploy(self, ctx: PluginContext, artifact: Artifact) -> Deployment:
        ctx.say("noop: nothing to deploy")
        return Deployment(id=f"noop-{ctx.app}")

    async def destroy(self, ctx: PluginContext) -> None:
        ctx.say("noop: nothing to destroy")

    async def status(self, ctx: PluginContext) -> Status:
        return Status(state="unknown", detail="noop deploys nothing")

    async def release(self, ctx: PluginContext, deployment: Deployment) -> None:
        ctx.say("noop: nothing to release")

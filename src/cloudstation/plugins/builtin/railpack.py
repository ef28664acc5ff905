"""``railpack``: build an image from source with Railpack (no Dockerfile needed), via BuildKit.

Runs, in the build context directory ``<app path>/<context>``::

    railpack build --name IMAGE:TAG [--platform P] [--build-cmd CMD] [--start-cmd CMD]
                   [--env K=V ...] [--env NAME ...] .

with ``DOCKER_BUILDKIT=1`` in the child's environment (Railpack itself needs ``BUILDKIT_HOST``: it is
inherited from ``cs``'s environment or ``ctx.env``). Railpack has no build args: ``build_args`` become
``--env K=V`` (visible in argv), and ``env`` values, which may be secrets, are passed by name only
(``--env NAME``: railpack reads the value from its environment, where we put it).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from cloudstation.plugins.base import Artifact, Plugin, PluginConfig, PluginContext
from cloudstation.plugins.builtin.docker import (
    build_context,
    child_env,
    image_ref,
    name_flags,
    option,
    pair_flags,
    split_ref,
)


class RailpackConfig(PluginConfig, frozen=True):
    """``railpack``'s attributes."""

    name: str = ""  # image name; the app name when empty
    image: str = ""  # alias of name (wins when both are set)
    tag: str = ""  # "latest" when empty
    context: str = "."  # relative to the app path
    build_args: dict[str, str] = msgspec.field(default_factory=dict)  # --env K=V (visible in argv)
    env: dict[str, str] = msgspec.field(default_factory=dict)  # --env NAME, value via environment
    platform: str = ""  # --platform, e.g. "linux/amd64"
    build_cmd: str = ""  # --build-cmd
    start_cmd: str = ""  # --start-cmd


class Railpack(Plugin):
    """Builds an image from source with ``railpack build``."""

    name: ClassVar[str] = "railpack"
    Config: ClassVar[type[PluginConfig]] = RailpackConfig
    description: ClassVar[str] = "Build an image from source with `railpack build` (BuildKit), no Dockerfile needed."

    config: RailpackConfig

    async def build(self, ctx: PluginContext) -> Artifact:
        cfg = self.config
        ref = image_ref(cfg.image or cfg.name or ctx.app, cfg.tag)
        context_dir = build_context(ctx, cfg.context)
        argv = ["railpack", "build", "--name", ref]
        argv += option("--platform", cfg.platform)
        argv += option("--build-cmd", cfg.build_cmd) + option("--start-cmd", cfg.start_cmd)
        argv += pair_flags("--env", cfg.build_args)
        argv += name_flags("--env", cfg.env, tool="railpack")
        argv.append(".")
        env = child_env(ctx, {**cfg.env, "DOCKER_BUILDKIT": "1"})
        ctx.say(f"railpack: building {ref}")
        await ctx.check(argv, what="railpack build", env=env, cwd=context_dir)
        repo, _, tag = split_ref(ref)
        return Artifact(kind="image", ref=ref, metadata={"builder": self.name, "image": repo, "tag": tag})

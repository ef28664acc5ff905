"""``nixpacks``: build an image from source with Nixpacks (no Dockerfile needed).

Runs, in the build context directory ``<app path>/<context>``::

    nixpacks build . --name IMAGE:TAG [--platform P] [--build-cmd CMD] [--start-cmd CMD]
                   [--env K=V ...] [--env NAME ...]

Nixpacks names the image exactly ``--name`` (it has no separate tag: its ``--tag`` adds *other* image
names), so the tag is part of ``--name``. It has no build args either: ``build_args`` become
``--env K=V`` (visible in argv), and ``env`` values, which may be secrets, are passed by name only
(``--env NAME``: nixpacks reads the value from its environment, where we put it).
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


class NixpacksConfig(PluginConfig, frozen=True):
    """``nixpacks``'s attributes."""

    name: str = ""  # image name; the app name when empty
    image: str = ""  # alias of name (wins when both are set)
    tag: str = ""  # "latest" when empty
    context: str = "."  # relative to the app path
    build_args: dict[str, str] = msgspec.field(default_factory=dict)  # --env K=V (visible in argv)
    env: dict[str, str] = msgspec.field(default_factory=dict)  # --env NAME, value via environment
    platform: str = ""  # --platform, e.g. "linux/amd64"
    build_cmd: str = ""  # --build-cmd
    start_cmd: str = ""  # --start-cmd


class Nixpacks(Plugin):
    """Builds an image from source with ``nixpacks build``."""

    name: ClassVar[str] = "nixpacks"
    Config: ClassVar[type[PluginConfig]] = NixpacksConfig
    description: ClassVar[str] = "Build an image from source with `nixpacks build`, no Dockerfile needed."

    config: NixpacksConfig

    async def build(self, ctx: PluginContext) -> Artifact:
        cfg = self.config
        ref = image_ref(cfg.image or cfg.name or ctx.app, cfg.tag)
        context_dir = build_context(ctx, cfg.context)
        argv = ["nixpacks", "build", ".", "--name", ref]
        argv += option("--platform", cfg.platform)
        argv += option("--build-cmd", cfg.build_cmd) + option("--start-cmd", cfg.start_cmd)
        argv += pair_flags("--env", cfg.build_args)
        argv += name_flags("--env", cfg.env, tool="nixpacks")
        env = child_env(ctx, cfg.env)
        ctx.say(f"nixpacks: building {ref}")
        await ctx.check(argv, what="nixpacks build", env=env, cwd=context_dir)
        repo, _, tag = split_ref(ref)
        return Artifact(kind="image", ref=ref, metadata={"builder": self.name, "image": repo, "tag": tag})

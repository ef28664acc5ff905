"""What ``railpack`` and ``nixpacks`` share: building an image from source, no Dockerfile needed.

Both run ``<tool> build`` in ``<app path>/<context>`` with ``--name IMAGE:TAG`` (the tag is part of the
name), ``--platform``, ``--build-cmd``, ``--start-cmd``, and ``--env``: neither has build args, so
``build_args`` become ``--env K=V`` (visible in argv), while ``env`` values, which may be secrets, are
passed by name only (``--env NAME``: the tool reads the value from its environment, where we put it).
Subclasses say where the source directory goes and what extra environment the tool needs.

After the build, the image's config is read with ``docker image inspect`` (``podman`` when there is no
``docker``): the artifact's ports are the exposed ones, else ``PORT=`` from the image's env. A config
that cannot be read is a warning in the log, and the ports stay unknown.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from cloudstation.plugins.base import Artifact, Plugin, PluginConfig, PluginContext
from cloudstation.plugins.builtin._engine import CLIS, image_config, which
from cloudstation.plugins.builtin._shell import (
    build_context,
    image_ref,
    name_flags,
    option,
    pair_flags,
    split_ref,
    tool_env,
)


class SourceImageConfig(PluginConfig, frozen=True):
    """The attributes of a from-source image builder."""

    name: str = ""  # image name; the app name when empty
    image: str = ""  # alias of name (wins when both are set)
    tag: str = ""  # "latest" when empty
    context: str = "."  # relative to the app path
    build_args: dict[str, str] = msgspec.field(default_factory=dict)  # --env K=V (visible in argv)
    env: dict[str, str] = msgspec.field(default_factory=dict)  # --env NAME, value via environment
    platform: str = ""  # --platform, e.g. "linux/amd64"
    build_cmd: str = ""  # --build-cmd
    start_cmd: str = ""  # --start-cmd


class SourceImageBuilder(Plugin):
    """``<tool> build`` of the app's source into an image."""

    Config: ClassVar[type[PluginConfig]] = SourceImageConfig
    #: "." goes right after "build" (True) or last (False).
    source_first: ClassVar[bool] = False
    extra_env: ClassVar[dict[str, str]] = {}

    config: SourceImageConfig

    async def build(self, ctx: PluginContext) -> Artifact:
        cfg = self.config
        tool = self.name
        ref = image_ref(cfg.image or cfg.name or ctx.app, cfg.tag)
        argv = [tool, "build", *(["."] if self.source_first else []), "--name", ref]
        argv += option("--platform", cfg.platform)
        argv += option("--build-cmd", cfg.build_cmd) + option("--start-cmd", cfg.start_cmd)
        argv += pair_flags("--env", cfg.build_args)
        argv += name_flags("--env", cfg.env, tool=tool)
        if not self.source_first:
            argv.append(".")
        env = tool_env(ctx, {**cfg.env, **self.extra_env})
        ctx.say(f"{tool}: building {ref}")
        await ctx.check(argv, what=f"{tool} build", env=env, cwd=build_context(ctx, cfg.context))
        repo, _, tag = split_ref(ref)
        metadata = {"builder": tool, "image": repo, "tag": tag}
        cli = next((name for name in CLIS if which(name, env) is not None), "")
        config = await image_config(ctx, ref, cli=cli, env=env) if cli else None
        if not cli:
            ctx.say(f"warning: {tool}: neither docker nor podman is on PATH to read the image's ports")
        if config is not None and config.image_id:
            metadata["image_id"] = config.image_id
        ports = config.ports if config is not None else ()
        return Artifact(kind="image", ref=ref, ports=ports, metadata=metadata)

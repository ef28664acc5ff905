"""Params → the ``cloudstation.hcl`` a dispatched deployment runs, written with the HCL writer.

Owns the translation of the params into one app (``app "app"``): a ``build`` block for the chosen
builder, a ``registry`` block (``docker``) unless ``disablePush`` or the builder makes no image, and a
``deploy`` block for the params' deploy plugin (``nomad-pack`` by default, with the pack variables of
:mod:`cloudstation.dispatch.packvars`).

Secret values never enter the file: each is a ``sensitive`` variable read from a private environment
(:attr:`Rendered.env`) that is handed to the config loader only, so the parsed config has them, the file
on disk does not, and the loader reports them in ``sensitive_values`` for the redaction set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudstation.config import hclwriter
from cloudstation.config.hclwriter import Block, Data, Ref
from cloudstation.config.loader import parse_config
from cloudstation.config.model import ProjectConfig
from cloudstation.dispatch.packvars import pack_variables
from cloudstation.dispatch.params_models import DeployParamsBase, DeployRepositoryParams, NetworkPort

PROJECT = "dispatch"
APP = "app"
DEFAULT_DEPLOY = "nomad-pack"
IMAGE_BUILDERS = frozenset({"csdocker", "docker", "railpack", "nixpacks"})
FILENAME = "cloudstation.hcl"


@dataclass
class Rendered:
    """A generated project file and the private environment its variables read."""

    text: str
    env: dict[str, str] = field(default_factory=dict)

    def load(self, path: Path) -> ProjectConfig:
        """Write the file to ``path`` and load it (its variables from :attr:`env` only)."""
        path.write_text(self.text, encoding="utf-8")
        return parse_config(self.text, str(path), self.env)


@dataclass(frozen=True)
class RegistrySettings:
    """Where a build is pushed, with the original's environment fallbacks applied.

    Each of ``build.registryUrl`` / ``registryNamespace`` / ``registryUsername`` / ``registryPassword``
    falls back to ``REGISTRY_URL`` / ``REGISTRY_NAMESPACE`` / ``REGISTRY_USERNAME`` / ``REGISTRY_PASSWORD``
    when empty in the params, and ``registry.registryToken`` (a private pack registry) to
    ``REGISTRY_TOKEN``, as the original's docker and nomad-pack plugins read them.
    """

    url: str = ""
    namespace: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    pack_token: str = field(default="", repr=False)


def registry_settings(params: DeployParamsBase, env: Mapping[str, str]) -> RegistrySettings:
    build = getattr(params, "build", None)

    def pick(value: str, name: str) -> str:
        return value.strip() or env.get(name, "").strip()

    return RegistrySettings(
        url=pick(build.registry_url if build else "", "REGISTRY_URL"),
        namespace=pick(build.registry_namespace if build else "", "REGISTRY_NAMESPACE"),
        username=pick(build.registry_username if build else "", "REGISTRY_USERNAME"),
        password=(build.registry_password if build else "") or env.get("REGISTRY_PASSWORD", ""),
        pack_token=params.registry.registry_token or env.get("REGISTRY_TOKEN", ""),
    )


def image_repository(params: DeployParamsBase, reg: RegistrySettings | None = None) -> str:
    """The image repository a build produces: ``[registryUrl/][namespace/]name`` (lower case)."""
    name = (params.image_name or params.job_id or APP).strip().lower()
    reg = reg if reg is not None else registry_settings(params, {})
    parts = [
        reg.url.removeprefix("https://").removeprefix("http://").strip("/"),
        reg.namespace.strip("/"),
        name,
    ]
    return "/".join(part for part in parts if part)


def image_tag(params: DeployParamsBase) -> str:
    return params.image_tag.strip() or "latest"


class _Secrets:
    """Collects secret values as sensitive variables: the file gets ``var.NAME``, the env the value."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.env: dict[str, str] = {}

    def ref(self, name: str, value: str) -> Ref:
        env_name = f"CS_DISPATCH_{name.upper()}"
        self.env[env_name] = value
        attributes: dict[str, Data] = {"type": "string", "sensitive": True, "env": [env_name], "default": ""}
        self.blocks.append(Block("variable", (name,), attributes))
        return Ref(f"var.{name}")


def render(
    params: DeployParamsBase,
    *,
    app_path: str,
    builder: str,
    build_env: Mapping[str, str] | None = None,
    networks: Sequence[NetworkPort] = (),
    env: Mapping[str, str] | None = None,
    dockerfile: str = "",
) -> Rendered:
    """The project file for ``params`` built with ``builder``; ``build_env`` holds secret build values.

    ``env`` is the worker's environment, for the original's registry fallbacks (:func:`registry_settings`);
    ``dockerfile`` the one discovered in the source (default: ``build.dockerfilePath`` or ``Dockerfile``).
    """
    secrets = _Secrets()
    env_refs: dict[str, Data] = {
        key: secrets.ref(f"build_env_{index}", value) for index, (key, value) in enumerate((build_env or {}).items())
    }
    reg = registry_settings(params, env or {})
    config = _builder_config(params, builder, env_refs, reg, dockerfile)
    blocks = [Block("build", attributes={"use": builder, **config})]
    build = getattr(params, "build", None)
    if builder in IMAGE_BUILDERS and build is not None and not build.disable_push:
        registry: dict[str, Data] = {"use": "docker", "image": image_repository(params, reg), "tag": image_tag(params)}
        if reg.url:
            registry["registry"] = reg.url
        if reg.username or reg.password:
            registry["username"] = reg.username
            registry["password"] = secrets.ref("registry_password", reg.password)
        blocks.append(Block("registry", attributes=registry))
    deploy = params.deploy.strip() or DEFAULT_DEPLOY
    deploy_config = _deploy_config(params, deploy, secrets, networks, builder, reg.pack_token)
    blocks.append(Block("deploy", attributes={"use": deploy, **deploy_config}))
    app = Block("app", (APP,), {"path": app_path}, blocks)
    text = hclwriter.dumps({"project": PROJECT}, [*secrets.blocks, app])
    return Rendered(text, secrets.env)


def _builder_config(
    params: DeployParamsBase, builder: str, env_refs: Mapping[str, Data], reg: RegistrySettings, dockerfile: str
) -> dict[str, Data]:
    build = params.build if isinstance(params, DeployRepositoryParams) else None
    if build is None:
        return {}
    build_args: dict[str, Data] = dict(build.build_args)
    env: dict[str, Data] = {**build.static_build_env, **env_refs}
    image = {"image": image_repository(params, reg), "tag": image_tag(params)}
    config: dict[str, Data]
    if builder in ("csdocker", "docker"):
        dockerfile = dockerfile or build.dockerfile_path or "Dockerfile"
        config = {**image, "dockerfile": dockerfile, "build_args": build_args, "env": env}
    elif builder in ("railpack", "nixpacks"):
        config = {**image, "build_args": build_args, "env": env}
        if build.build_command:
            config["build_cmd"] = build.build_command
        if build.start_command:
            config["start_cmd"] = build.start_command
    elif builder == "exec":
        config = {"build_cmd": build.build_command, "env": env}
    else:
        config = {}
    return {key: value for key, value in config.items() if value != {}}


def _deploy_config(
    params: DeployParamsBase,
    deploy: str,
    secrets: _Secrets,
    networks: Sequence[NetworkPort],
    builder: str,
    pack_token: str,
) -> dict[str, Data]:
    if deploy == "nomad-pack":
        reg = params.registry
        config: dict[str, Any] = {
            "deployment_name": params.job_id,
            "pack": reg.pack or "cloudstation",
            "variables": pack_variables(params, networks, builder=builder),
        }
        if reg.use_embedded:
            config["use_embedded"] = True
        for key, value in (
            ("registry_name", reg.registry_name),
            ("registry_source", reg.registry_source),
            ("registry_ref", reg.registry_ref),
            ("registry_target", reg.registry_target),
            ("nomad_addr", params.nomad_address),
        ):
            if value:
                config[key] = value
        if pack_token:
            config["registry_token"] = secrets.ref("registry_token", pack_token)
        if params.nomad_token:
            config["nomad_token"] = secrets.ref("nomad_token", params.nomad_token)
        return config
    if deploy == "process":
        build = getattr(params, "build", None)
        start = (build.start_command if build is not None else "") or params.command
        config = {"start_cmd": start}
        port = next((n.port_number for n in networks if n.port_number), 0)
        if port:
            config["port"] = port
        return config
    return {}

"""Params → the project a dispatched deployment runs: one app (``app "app"``) built directly as the model.

Owns the translation of the params into that app: a ``build`` block for the chosen builder, a
``registry`` block (``docker``) unless ``disablePush`` or the builder makes no image, and a ``deploy``
block for the params' deploy plugin (``nomad-pack`` by default, with the pack variables of
:mod:`cloudstation.dispatch.packvars`).

:class:`DispatchProject` describes the blocks once, from the params; :meth:`DispatchProject.render` gives,
for a builder and the final networks, both the typed :class:`~cloudstation.config.model.ProjectConfig`
the lifecycle runs (no HCL is parsed) and the ``cloudstation.hcl`` text that documents it, written to the
work dir (``CS_WORK_DIR`` keeps it). Locations in the model are the lines of that text, so a config
error names the line a user can read.

Secret values never enter the file: each is a ``sensitive`` variable read from a private environment
(``CS_DISPATCH_*``, never set anywhere), so the file on disk shows ``var.NAME`` where the model holds the
value, and the model's ``sensitive_values`` gives them for the redaction set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from cloudstation.config import hclwriter
from cloudstation.config.hclwriter import Block, Data, Ref
from cloudstation.config.locations import Location
from cloudstation.config.model import App, Component, ProjectConfig, Setting, Variable
from cloudstation.config.values import Value
from cloudstation.dispatch.packvars import pack_variables
from cloudstation.dispatch.params_models import DeployParamsBase, NetworkPort
from cloudstation.vocabulary import Step

PROJECT = "dispatch"
APP = "app"
DEFAULT_DEPLOY = "nomad-pack"
IMAGE_BUILDERS = frozenset({"csdocker", "docker", "railpack", "nixpacks"})
FILENAME = "cloudstation.hcl"

# In the written text: a component block of the app, and an attribute of such a block (the writer indents
# each level by two spaces and writes every value of a nested container on deeper lines).
_COMPONENT_LINE = re.compile(r"  (build|registry|deploy|release) \{")
_ATTRIBUTE_LINE = re.compile(r"    ([A-Za-z_][A-Za-z0-9_-]*) = ")
_VARIABLE_LINE = re.compile(r'variable "([^"]+)" \{')
_APP_LINE = re.compile(r'app "[^"]+" \{')


@dataclass(frozen=True)
class SecretSpec:
    """A secret attribute value: ``var.<name>`` in the written file, ``value`` in the model."""

    name: str
    value: str = field(repr=False)

    @property
    def env_name(self) -> str:
        return f"CS_DISPATCH_{self.name.upper()}"


Spec: TypeAlias = str | int | float | bool | SecretSpec | list["Spec"] | dict[str, "Spec"] | None
"""An attribute as the dispatch writes it: a plain value, or a :class:`SecretSpec` somewhere inside."""


@dataclass(frozen=True)
class RegistryTarget:
    """Where a build is pushed, with the environment fallbacks applied.

    Each of ``build.registryUrl`` / ``registryNamespace`` / ``registryUsername`` / ``registryPassword``
    falls back to ``REGISTRY_URL`` / ``REGISTRY_NAMESPACE`` / ``REGISTRY_USERNAME`` / ``REGISTRY_PASSWORD``
    when empty in the params, and ``registry.registryToken`` (a private pack registry) to
    ``REGISTRY_TOKEN``: a worker's job may carry the platform's registry credentials for every deployment.
    """

    url: str = ""
    namespace: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    pack_token: str = field(default="", repr=False)


def registry_settings(params: DeployParamsBase, env: Mapping[str, str]) -> RegistryTarget:
    build = params.build

    def pick(value: str, name: str) -> str:
        return value.strip() or env.get(name, "").strip()

    return RegistryTarget(
        url=pick(build.registry_url, "REGISTRY_URL"),
        namespace=pick(build.registry_namespace, "REGISTRY_NAMESPACE"),
        username=pick(build.registry_username, "REGISTRY_USERNAME"),
        password=build.registry_password or env.get("REGISTRY_PASSWORD", ""),
        pack_token=params.registry.registry_token or env.get("REGISTRY_TOKEN", ""),
    )


def image_repository(params: DeployParamsBase, reg: RegistryTarget | None = None) -> str:
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


@dataclass(frozen=True)
class Rendered:
    """One state of the project: the model the lifecycle runs and the file text that documents it."""

    config: ProjectConfig
    text: str

    def write(self) -> ProjectConfig:
        """Write the text to the model's file (``config.file``); the model."""
        Path(self.config.file).write_text(self.text, encoding="utf-8")
        return self.config


class DispatchProject:
    """The project of one dispatched deployment, described once from its params.

    ``app_path`` is the app directory relative to the work dir; ``build_env`` holds secret build values
    (from Vault); ``env`` is the worker's environment, for the registry fallbacks
    (:func:`registry_settings`); ``dockerfile`` the one discovered in the source (default:
    ``build.dockerfilePath`` or ``Dockerfile``); ``file`` the path the project is written to.
    """

    def __init__(
        self,
        params: DeployParamsBase,
        *,
        app_path: str,
        file: Path,
        build_env: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        dockerfile: str = "",
    ) -> None:
        self.params = params
        self.app_path = app_path
        self.file = file
        self.dockerfile = dockerfile
        self.reg = registry_settings(params, env or {})
        self.build_env = {
            key: SecretSpec(f"build_env_{index}", value) for index, (key, value) in enumerate((build_env or {}).items())
        }

    def render(self, builder: str, networks: Sequence[NetworkPort] = ()) -> Rendered:
        """The project built with ``builder``, deploying ``networks`` (domains allocated)."""
        blocks = self.blocks(builder, networks)
        secrets: dict[str, SecretSpec] = {secret.name: secret for secret in self.build_env.values()}
        for _kind, _use, attributes in blocks:
            _collect(attributes, secrets)
        variables = [_variable_block(secret) for secret in secrets.values()]
        components = [
            Block(kind, attributes={"use": use, **{name: _data(spec) for name, spec in attributes.items()}})
            for kind, use, attributes in blocks
        ]
        app = Block("app", (APP,), {"path": self.app_path}, components)
        text = hclwriter.dumps({"project": PROJECT}, [*variables, app])
        return Rendered(_model(str(self.file), self.app_path, blocks, secrets, _lines(text)), text)

    def blocks(self, builder: str, networks: Sequence[NetworkPort] = ()) -> list[tuple[Step, str, dict[str, Spec]]]:
        """The app's ``(kind, plugin, attributes)`` in lifecycle order."""
        params = self.params
        blocks: list[tuple[Step, str, dict[str, Spec]]] = [(Step.BUILD, builder, self._builder_config(builder))]
        if builder in IMAGE_BUILDERS and not params.build.disable_push:
            registry: dict[str, Spec] = {"image": image_repository(params, self.reg), "tag": image_tag(params)}
            if self.reg.url:
                registry["registry"] = self.reg.url
            if self.reg.username or self.reg.password:
                registry["username"] = self.reg.username
                registry["password"] = SecretSpec("registry_password", self.reg.password)
            blocks.append((Step.REGISTRY, "docker", registry))
        deploy = params.deploy.strip() or DEFAULT_DEPLOY
        blocks.append((Step.DEPLOY, deploy, self._deploy_config(deploy, networks, builder)))
        return blocks

    def _builder_config(self, builder: str) -> dict[str, Spec]:
        params = self.params
        build = params.build
        build_args: dict[str, Spec] = dict(build.build_args)
        env: dict[str, Spec] = {**build.static_build_env, **self.build_env}
        image: dict[str, Spec] = {"image": image_repository(params, self.reg), "tag": image_tag(params)}
        config: dict[str, Spec]
        if builder in ("csdocker", "docker"):
            dockerfile = self.dockerfile or build.dockerfile_path or "Dockerfile"
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

    def _deploy_config(self, deploy: str, networks: Sequence[NetworkPort], builder: str) -> dict[str, Spec]:
        params = self.params
        if deploy == "nomad-pack":
            reg = params.registry
            config: dict[str, Spec] = {
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
            if self.reg.pack_token:
                config["registry_token"] = SecretSpec("registry_token", self.reg.pack_token)
            if params.nomad_token:
                config["nomad_token"] = SecretSpec("nomad_token", params.nomad_token)
            return config
        if deploy == "process":
            config = {"start_cmd": params.build.start_command or params.command}
            port = next((n.port_number for n in networks if n.port_number), 0)
            if port:
                config["port"] = port
            return config
        return {}


# ------------------------------------------------------------------------------- the model and the file


def _collect(spec: Spec, found: dict[str, SecretSpec]) -> None:
    """Every :class:`SecretSpec` in ``spec``, in writing order, into ``found``."""
    if isinstance(spec, SecretSpec):
        found.setdefault(spec.name, spec)
    elif isinstance(spec, dict):
        for item in spec.values():
            _collect(item, found)
    elif isinstance(spec, list):
        for item in spec:
            _collect(item, found)


def _data(spec: Spec) -> Data:
    """``spec`` as the file shows it: a secret is a reference to its variable."""
    if isinstance(spec, SecretSpec):
        return Ref(f"var.{spec.name}")
    if isinstance(spec, dict):
        return {key: _data(item) for key, item in spec.items()}
    if isinstance(spec, list):
        return [_data(item) for item in spec]
    return spec


def _value(spec: Spec) -> Value:
    """``spec`` as the model holds it: a secret is its value."""
    if isinstance(spec, SecretSpec):
        return spec.value
    if isinstance(spec, dict):
        return {key: _value(item) for key, item in spec.items()}
    if isinstance(spec, list):
        return [_value(item) for item in spec]
    return spec


def _variable_block(secret: SecretSpec) -> Block:
    attributes: dict[str, Data] = {"type": "string", "sensitive": True, "env": [secret.env_name], "default": ""}
    return Block("variable", (secret.name,), attributes)


def _lines(text: str) -> dict[tuple[str, str], int]:
    """The line of each variable ``("variable", name)``, the app ``("app", "")``, each component block
    ``(kind, "")`` and each of its attributes ``(kind, name)`` in ``text``."""
    lines: dict[tuple[str, str], int] = {}
    kind = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _VARIABLE_LINE.fullmatch(line):
            lines[("variable", match.group(1))] = number
        elif _APP_LINE.fullmatch(line):
            lines[("app", "")] = number
        elif match := _COMPONENT_LINE.fullmatch(line):
            kind = match.group(1)
            lines[(kind, "")] = number
        elif kind and (match := _ATTRIBUTE_LINE.match(line)):
            lines[(kind, match.group(1))] = number
    return lines


def _model(
    file: str,
    app_path: str,
    blocks: list[tuple[Step, str, dict[str, Spec]]],
    secrets: Mapping[str, SecretSpec],
    lines: Mapping[tuple[str, str], int],
) -> ProjectConfig:
    """What loading the written file gives, built from the blocks themselves."""

    def at(kind: str, name: str = "") -> Location:
        return Location(file, lines.get((kind, name)))

    components: dict[Step, Component] = {}
    for kind, use, attributes in blocks:
        settings = {
            name: Setting(name, _value(spec), at(kind, name), _is_secret(spec)) for name, spec in attributes.items()
        }
        components[kind] = Component(APP, kind, use, settings, at(kind), at(kind, "use"))
    app = App(
        name=APP,
        path=app_path,
        labels={},
        env={},
        build=components[Step.BUILD],
        deploy=components[Step.DEPLOY],
        location=at("app"),
        registry=components.get(Step.REGISTRY),
    )
    variables = {
        secret.name: Variable(
            name=secret.name,
            type="string",
            value=secret.value,
            source=f"env:{secret.env_name}",
            sensitive=True,
            description="",
            env=(secret.env_name,),
            location=at("variable", secret.name),
        )
        for secret in secrets.values()
    }
    sensitive = frozenset(secret.value for secret in secrets.values() if secret.value)
    return ProjectConfig(file, PROJECT, variables, {APP: app}, sensitive)


def _is_secret(spec: Spec) -> bool:
    found: dict[str, SecretSpec] = {}
    _collect(spec, found)
    return bool(found)

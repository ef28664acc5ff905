"""Typed models of the dispatch params document (``NOMAD_META_PARAMS``), one per task.

Owns the shape only: field names, JSON names (exactly the backend's, camelCase plus its few snake_case
names) and defaults. Decoding (lenient numbers, strings, booleans) lives in ``params_lenient``; validation
and the task table in ``params``. Every model is frozen; use ``msgspec.structs.replace`` to derive one.

Absent, ``null`` and (for numbers) ``""`` all read as the zero value (the backend sends all three). The ``repr`` of a
model masks every secret field, so a model can be logged without leaking a token.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from cloudstation.redaction import MASK

__all__ = [
    "BuildOptions",
    "ConfigFile",
    "ConsulLinkedService",
    "ConsulSettings",
    "CsiVolume",
    "DeployImageParams",
    "DeployParamsBase",
    "DeployRepositoryParams",
    "DestroyJob",
    "DestroyJobPackParams",
    "HealthCheck",
    "JobConfig",
    "NetworkPort",
    "RegistrySettings",
    "TemplateStringVariable",
    "TlsSettings",
    "UpdateParameters",
    "VaultLinkedSecret",
    "VaultLinkedSecretPath",
]

_MASK = repr(MASK)


class _Model(msgspec.Struct, frozen=True, kw_only=True, rename="camel", repr_omit_defaults=True):
    """Common base: frozen, keyword-only, camelCase JSON names, secret-masking ``repr``."""

    # Python attribute names of the fields whose values are secrets (masked in ``repr``).
    _secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        parts: list[str] = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            default = _default_of(type(self), name)
            if value == default:
                continue
            shown = _MASK if name in self._secret_fields and value else repr(value)
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

    __str__ = __repr__

    def secrets(self) -> frozenset[str]:
        """Every non-empty secret value this model and its nested models carry (for the redaction set)."""
        found: set[str] = set()
        _collect_secrets(self, found)
        return frozenset(found)


def _collect_secrets(value: object, found: set[str]) -> None:
    if isinstance(value, _Model):
        for name in value.__struct_fields__:
            field_value = getattr(value, name)
            if name in value._secret_fields:
                if isinstance(field_value, str) and field_value:
                    found.add(field_value)
            else:
                _collect_secrets(field_value, found)
    elif isinstance(value, tuple):
        for item in value:
            _collect_secrets(item, found)


def _default_of(cls: type[msgspec.Struct], name: str) -> object:
    """The default value of field ``name`` of ``cls`` (``NODEFAULT`` when it has none)."""
    index = cls.__struct_fields__.index(name)
    defaults = cls.__struct_defaults__
    offset = len(cls.__struct_fields__) - len(defaults)
    if index < offset:
        return msgspec.NODEFAULT
    default: object = defaults[index - offset]
    factory = getattr(default, "factory", None)
    if callable(factory):
        return factory()
    return default


# --------------------------------------------------------------------------------------------- nested


class BuildOptions(_Model, frozen=True, kw_only=True):
    """``build{...}``: how a repository is built (and, for images, the start command override)."""

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"registry_password"})

    builder: str = ""
    dockerfile_path: str = ""
    build_command: str = ""
    start_command: str = ""
    root_directory: str = ""
    build_args: dict[str, str] = msgspec.field(default_factory=dict)
    static_build_env: dict[str, str] = msgspec.field(default_factory=dict)
    disable_push: bool = False
    private_registry: bool = False
    registry_url: str = ""
    registry_namespace: str = ""
    registry_username: str = ""
    registry_password: str = ""


class RegistrySettings(_Model, frozen=True, kw_only=True):
    """``registry{...}``: the nomad-pack registry to deploy from."""

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"registry_token"})

    pack: str = ""
    registry_name: str = ""
    registry_ref: str = ""
    registry_source: str = ""
    registry_target: str = ""
    registry_token: str = ""
    use_embedded: bool = False


class HealthCheck(_Model, frozen=True, kw_only=True):
    """``networks[].health_check{...}``."""

    type: str = ""
    path: str = ""
    interval: str = ""
    timeout: str = ""
    port: int = 0


class NetworkPort(_Model, frozen=True, kw_only=True):
    """``networks[]``: one exposed port."""

    port_number: int = 0
    port_type: str = ""
    public: bool = False
    domain: str = ""
    custom_domain: str = msgspec.field(default="", name="custom_domain")
    # A string ("true"/"false", or a check type); a JSON boolean is accepted and read as its text.
    has_health_check: str = msgspec.field(default="", name="has_health_check")
    health_check: HealthCheck = msgspec.field(default_factory=HealthCheck, name="health_check")


class ConsulLinkedService(_Model, frozen=True, kw_only=True):
    """``consul.linkedServices[]``."""

    variable_name: str = ""
    consul_service_name: str = ""


class ConsulSettings(_Model, frozen=True, kw_only=True):
    """``consul{...}``: service registration."""

    service_name: str = ""
    tags: tuple[str, ...] = ()
    service_port: int = 0
    linked_services: tuple[ConsulLinkedService, ...] = ()


class CsiVolume(_Model, frozen=True, kw_only=True):
    """``csiVolume[]``."""

    id: str = ""
    mount_paths: tuple[str, ...] = ()


class JobConfig(_Model, frozen=True, kw_only=True, rename=None):
    """``jobConfig{...}`` (snake_case inside): service, batch or cron job."""

    type: str = ""
    cron: str = ""
    prohibit_overlap: bool = False
    payload: str = ""
    meta_required: tuple[str, ...] = ()


class UpdateParameters(_Model, frozen=True, kw_only=True):
    """``update{...}``: the rolling-update stanza."""

    min_healthy_time: str = ""
    healthy_deadline: str = ""
    progress_deadline: str = ""
    auto_revert: bool = False
    auto_promote: bool = False
    max_parallel: int = 0
    canary: int = 0


class VaultLinkedSecretPath(_Model, frozen=True, kw_only=True):
    """``vaultLinkedSecretPaths[]``: another secrets path whose keys are exposed with ``prefix``."""

    prefix: str = ""
    secret_path: str = ""


class VaultLinkedSecret(_Model, frozen=True, kw_only=True):
    """``vaultLinkedSecrets[]``: a secret name and the template that renders it."""

    secret: str = ""
    template: str = ""


class TlsSettings(_Model, frozen=True, kw_only=True, rename=None):
    """``tls{...}`` (snake_case inside): certificate issuance."""

    cert_path: str = ""
    key_path: str = ""
    common_name: str = ""
    pka_path: str = ""
    ttl: str = ""


class TemplateStringVariable(_Model, frozen=True, kw_only=True):
    """``templateStringVariables[]``."""

    name: str = ""
    pattern: str = ""
    service_name: str = ""
    service_secret_path: str = ""
    linked_vars: tuple[str, ...] = ()


class ConfigFile(_Model, frozen=True, kw_only=True):
    """``configFiles[]``: a file written into the task."""

    path: str = ""
    content: str = ""


# ------------------------------------------------------------------------------------------ documents


class DeployParamsBase(_Model, frozen=True, kw_only=True):
    """Fields common to the deploy tasks (repository and image)."""

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"nomad_token", "role_id", "secret_id", "access_token"})

    # identity
    job_id: str = ""  # the Nomad job name
    deployment_id: str = ""
    service_id: str = ""
    team_id: str = ""
    user_id: str = ""
    owner_id: str = ""
    deployment_job_id: int = 0  # the database id every event's ``jobId`` carries
    project_id: str = ""
    image_name: str = ""
    image_tag: str = ""
    deploy: str = ""  # deploy plugin name
    replica_count: int = 0
    deployment_count: int = 0

    # Nomad
    nomad_address: str = ""
    nomad_token: str = ""
    node_pool: str = msgspec.field(default="", name="node_pool")

    # Vault
    vault_address: str = ""
    role_id: str = ""
    secret_id: str = ""
    secrets_path: str = ""
    shared_secret_path: str = ""
    uses_kv_engine: bool | None = None
    owner_uses_kv_engine: bool | None = None
    vault_linked_secret_paths: tuple[VaultLinkedSecretPath, ...] = ()
    vault_linked_secrets: tuple[VaultLinkedSecret, ...] = ()

    # registry
    registry: RegistrySettings = msgspec.field(default_factory=RegistrySettings)
    private_registry: str = ""
    private_registry_provider: str = ""

    # resources
    cpu: int = 0
    ram: int = 0
    gpu: int = 0
    gpu_model: str = msgspec.field(default="", name="gpu_model")

    # networking, discovery, storage
    networks: tuple[NetworkPort, ...] = ()
    consul: ConsulSettings = msgspec.field(default_factory=ConsulSettings)
    csi_volume: tuple[CsiVolume, ...] = ()

    # restart policy, job type, container
    restart_mode: str = ""
    restart_attempts: int = 0
    job_config: JobConfig | None = None
    command: str = ""
    entrypoint: tuple[str, ...] = ()
    docker_user: str = msgspec.field(default="", name="docker_user")

    # advanced
    update: UpdateParameters | None = None
    template_string_variables: tuple[TemplateStringVariable, ...] = ()
    config_files: tuple[ConfigFile, ...] = ()
    regions: str = ""
    tls: TlsSettings | None = None

    # cloud
    cloud_region: str = ""
    cloud_provider: str = ""
    cluster_domain: str = ""
    cluster_tcp_domain: str = ""

    # backend API (fall back to env BACKEND_URL / ACCESS_TOKEN)
    backend_url: str = ""
    access_token: str = ""

    # legacy, passed through untouched
    nomad_pack_config: dict[str, Any] = msgspec.field(default_factory=dict)

    # how a repository is built; for an image, only ``startCommand`` (and the registry fallbacks) count
    build: BuildOptions = msgspec.field(default_factory=BuildOptions)


class DeployRepositoryParams(DeployParamsBase, frozen=True, kw_only=True):
    """Params of ``deploy-repository`` and ``redeploy-repository``."""

    _secret_fields: ClassVar[frozenset[str]] = DeployParamsBase._secret_fields | {"git_pass", "source_url"}

    repository: str = ""  # "owner/repo"
    branch: str = ""
    git_pass: str = ""
    provider: str = "github"  # github | gitlab | bitbucket
    source_type: str = ""  # "local_upload" for an uploaded tarball
    source_url: str = ""  # pre-signed: holds a credential, so it is treated as a secret
    upload_id: str = ""


class DeployImageParams(DeployParamsBase, frozen=True, kw_only=True):
    """Params of ``deploy-image``."""


class DestroyJob(_Model, frozen=True, kw_only=True):
    """``jobs[]`` of ``destroy-job-pack``: one Nomad job to stop and purge."""

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"nomad_token"})

    job_id: str = ""
    service_id: str = ""
    nomad_address: str = ""
    nomad_token: str = ""


class DestroyJobPackParams(_Model, frozen=True, kw_only=True):
    """Params of ``destroy-job-pack``."""

    jobs: tuple[DestroyJob, ...] = ()
    reason: str = ""  # one of vocabulary.DESTROY_REASONS, or any other non-empty reason

"""``nomad-pack``: deploy an app to Nomad with ``nomad-pack run``; stop it and ask its status with ``nomad``.

Deploy writes ``variables`` (plus ``job_name`` and, for an image artifact, ``image`` when they are not
given, whichever pack runs) to ``vars.hcl`` in the plugin state directory with the HCL writer, then runs one of::

    # a pack registry is configured (registry_name + registry_source), unless use_embedded:
    nomad-pack registry add NAME SOURCE [--target=TARGET] [--ref=REF]
    nomad-pack run PACK --registry=NAME [--ref=REF] --name=JOB --var-file=VARS [--var-file=F ...] [--parser-v1]

    # otherwise the pack shipped inside cs (``pack`` names it, default "cloudstation") or a local pack
    # directory (``pack`` is a path, relative to the app path):
    nomad-pack run PACK_DIR --name=JOB --var-file=VARS [--var-file=F ...]

For the embedded pack the vars are first validated against its ``variables.hcl``
(:func:`validate_pack_vars`). A run that exits non-zero but printed ``Pack successfully deployed`` is a
success: the job was submitted, only nomad-pack's output template failed after it.

Destroy: ``nomad job stop -purge JOB`` (a job Nomad does not know counts as stopped). :func:`stop_job` is
the one implementation of that command in cs: ``cs dispatch``'s ``destroy-job-pack`` runs it too, with
each job's own address and token, and retries when :class:`JobStopError` says Nomad was unreachable.
Status: ``nomad job status JOB``, whose first ``Status = running|dead|pending`` line gives running /
stopped / unknown.

Secrets stay out of argv and messages: ``nomad_addr`` / ``nomad_token`` reach the child as
``NOMAD_ADDR`` / ``NOMAD_TOKEN`` in its environment; a private registry's ``registry_token`` reaches git
(which nomad-pack runs to fetch the registry) as an ``Authorization`` header in ``GIT_CONFIG_*``
environment variables, scoped to the registry's host. Both are added to the log's redactor.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from cloudstation.config import hclwriter
from cloudstation.plugins.base import Artifact, Deployment, Plugin, PluginConfig, PluginContext, PluginError, Status
from cloudstation.plugins.builtin._shell import run_capturing, tool_env
from cloudstation.plugins.builtin.packs import DEFAULT_PACK, embedded_pack_dir
from cloudstation.plugins.builtin.packs.schema import read_vars_file, validate_vars

__all__ = [
    "JobStopError",
    "NomadPack",
    "NomadPackConfig",
    "parse_job_status",
    "read_vars_file",
    "stop_job",
    "validate_pack_vars",
]

VARS_FILE = "vars.hcl"
DEPLOYED_MARKER = "Pack successfully deployed"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# What nomad prints for a job it does not know ("No job(s) with prefix or ID ... found").
_NO_SUCH_JOB = re.compile(r"No job\(s\) with prefix or ID .* found|job not found", re.IGNORECASE)
# Transport failures worth another attempt (the agent restarting, a network blip).
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|timeout awaiting|connection reset|EOF|"
    r"Unexpected response code: 5\d\d|context deadline exceeded",
    re.IGNORECASE,
)
_STATUS = re.compile(r"^\s*Status\s*=\s*(\S+)", re.MULTILINE)
_STATES: dict[str, Status] = {
    "running": Status("running", "running"),
    "dead": Status("stopped", "dead"),
    "pending": Status("unknown", "pending"),
}


class NomadPackConfig(PluginConfig, frozen=True):
    """``nomad-pack``'s attributes."""

    deployment_name: str = ""  # the Nomad job (and nomad-pack deployment) name; the app name when empty
    pack: str = DEFAULT_PACK  # pack name (in the registry, or embedded), or a local pack directory path
    use_embedded: bool = False  # run the embedded/local pack even when registry fields are set
    registry_name: str = ""
    registry_source: str = ""  # e.g. "github.com/org/packs"
    registry_ref: str = ""
    registry_target: str = ""  # one pack of the registry
    registry_token: str = ""  # for a private registry: given to git via GIT_CONFIG_* env, never argv
    nomad_addr: str = ""  # → NOMAD_ADDR in the child's environment
    nomad_token: str = ""  # → NOMAD_TOKEN in the child's environment
    variables: dict[str, Any] = msgspec.field(default_factory=dict)  # written to vars.hcl
    variable_files: list[str] = msgspec.field(default_factory=list)  # extra --var-file, relative to the app
    parser_v1: bool = False  # --parser-v1 (registry packs written for the legacy template syntax)

    def __repr__(self) -> str:
        return (
            f"NomadPackConfig(deployment_name={self.deployment_name!r}, pack={self.pack!r}, "
            f"registry_name={self.registry_name!r}, nomad_addr={self.nomad_addr!r})"
        )


class NomadPack(Plugin):
    """Deploys with ``nomad-pack run`` (a registry pack or the embedded one); stops and checks with ``nomad``."""

    name: ClassVar[str] = "nomad-pack"
    Config: ClassVar[type[PluginConfig]] = NomadPackConfig
    description: ClassVar[str] = "Deploy to Nomad with `nomad-pack run` (registry or embedded pack); `nomad job stop`."

    config: NomadPackConfig

    async def deploy(self, ctx: PluginContext, artifact: Artifact) -> Deployment:
        cfg = self.config
        job = self._job(ctx)
        registry = self._uses_registry()
        variables: dict[str, Any] = dict(cfg.variables)
        # A registry pack needs them as much as the embedded one (a registry copy of the cloudstation
        # pack defaults to a placeholder image and the pack's own name).
        variables.setdefault("job_name", job)
        if artifact.kind == "image":
            variables.setdefault("image", artifact.ref)
        if registry:
            pack_arg, embedded = _checked("pack", cfg.pack), False
        else:
            pack_dir, embedded = self._local_pack(ctx)
            pack_arg = str(pack_dir)
            if embedded:
                validate_pack_vars(variables, pack_dir)
        vars_file = write_vars_file(ctx.plugin_state(self.name) / VARS_FILE, variables)
        env = self._env(ctx)
        if registry:
            await self._add_registry(ctx, env)
        argv = ["nomad-pack", "run", pack_arg]
        if registry:
            argv.append(f"--registry={cfg.registry_name}")
            argv += [f"--ref={cfg.registry_ref}"] if cfg.registry_ref else []
        argv += [f"--name={job}", f"--var-file={vars_file}"]
        argv += [f"--var-file={ctx.app_path / extra}" for extra in cfg.variable_files]
        argv += ["--parser-v1"] if registry and cfg.parser_v1 else []
        ctx.say(f"nomad-pack: deploying {job} with pack {cfg.pack}")
        rc, lines = await run_capturing(ctx, argv, env=env)
        if rc != 0:
            if not any(DEPLOYED_MARKER in line for line in lines):
                raise PluginError(f"nomad-pack run failed (exit {rc})")
            ctx.say(f"nomad-pack: deployed, but its output template failed (exit {rc})")
        metadata = {"pack": cfg.pack, "embedded": str(embedded).lower(), "vars_file": str(vars_file)}
        if artifact.kind == "image":
            metadata["image"] = artifact.ref
        return Deployment(id=job, metadata=metadata)

    async def destroy(self, ctx: PluginContext) -> None:
        job = self._job(ctx)
        ctx.say(f"nomad: stopping and purging job {job}")
        if not await stop_job(ctx, job, self._env(ctx)):
            ctx.say(f"nomad: job {job} does not exist, nothing to stop")

    async def status(self, ctx: PluginContext) -> Status:
        job = self._job(ctx)
        rc, lines = await run_capturing(ctx, ["nomad", "job", "status", job], env=self._env(ctx))
        if rc != 0:
            if _no_such_job(lines):
                return Status("unknown", "job not found")
            raise PluginError(f"nomad job status failed (exit {rc})")
        return parse_job_status("".join(lines))

    # -- helpers -----------------------------------------------------------------------------------

    def _job(self, ctx: PluginContext) -> str:
        return _checked("deployment_name", self.config.deployment_name or ctx.app)

    def _uses_registry(self) -> bool:
        cfg = self.config
        if cfg.use_embedded or not (cfg.registry_name or cfg.registry_source):
            return False
        if not (cfg.registry_name and cfg.registry_source):
            raise PluginError("nomad-pack: a pack registry needs both registry_name and registry_source")
        return True

    def _local_pack(self, ctx: PluginContext) -> tuple[Path, bool]:
        """The pack directory to run, and whether it is one shipped inside cs."""
        pack = self.config.pack or DEFAULT_PACK
        if "/" not in pack and not pack.startswith("."):
            return embedded_pack_dir(pack), True
        path = (ctx.app_path / pack).resolve()
        if not (path / "metadata.hcl").is_file():
            raise PluginError(f"nomad-pack: {pack!r} is not a pack directory (no metadata.hcl)")
        return path, False

    def _env(self, ctx: PluginContext) -> dict[str, str]:
        cfg = self.config
        extra: dict[str, str] = {}
        if cfg.nomad_addr:
            extra["NOMAD_ADDR"] = cfg.nomad_addr
        if cfg.nomad_token:
            ctx.add_secret(cfg.nomad_token)
            extra["NOMAD_TOKEN"] = cfg.nomad_token
        return tool_env(ctx, extra)

    async def _add_registry(self, ctx: PluginContext, env: dict[str, str]) -> None:
        cfg = self.config
        name = _checked("registry_name", cfg.registry_name)
        source = _checked("registry_source", cfg.registry_source)
        if cfg.registry_token:
            ctx.add_secret(cfg.registry_token)
            auth = git_auth_env(source, cfg.registry_token, env)
            ctx.add_secret(*(v for k, v in auth.items() if k.startswith("GIT_CONFIG_VALUE_")))
            env = {**env, **auth}
        argv = ["nomad-pack", "registry", "add", name, source]
        argv += [f"--target={cfg.registry_target}"] if cfg.registry_target else []
        argv += [f"--ref={cfg.registry_ref}"] if cfg.registry_ref else []
        ctx.say(f"nomad-pack: adding pack registry {name}")
        rc, lines = await run_capturing(ctx, argv, env=env)
        if rc != 0 and not any("already exists" in line.lower() for line in lines):
            raise PluginError(f"nomad-pack registry add failed (exit {rc})")


class JobStopError(PluginError):
    """``nomad job stop`` failed; ``unreachable`` when Nomad could not be reached (worth another try)."""

    def __init__(self, exit_code: int, *, unreachable: bool) -> None:
        super().__init__(f"nomad job stop failed (exit {exit_code})")
        self.nomad_exit = exit_code
        self.unreachable = unreachable


async def stop_job(ctx: PluginContext, job: str, env: Mapping[str, str]) -> bool:
    """``nomad job stop -purge JOB`` with ``env``: True when stopped, False when Nomad does not know the job.

    ``job`` must already be checked not to read as an option. Any other failure is a :class:`JobStopError`;
    a missing ``nomad`` is a :class:`PluginError`.
    """
    rc, lines = await run_capturing(ctx, ["nomad", "job", "stop", "-purge", job], env=env)
    if rc == 0:
        return True
    if _no_such_job(lines):
        return False
    raise JobStopError(rc, unreachable=_UNREACHABLE.search("".join(lines)) is not None)


def validate_pack_vars(values: Mapping[str, object], pack: str | Path = DEFAULT_PACK) -> None:
    """Raise PluginError unless ``values`` fit the pack's ``variables.hcl`` (names, required, types)."""
    validate_vars(values, pack)


def write_vars_file(path: Path, variables: Mapping[str, Any]) -> Path:
    """Write ``variables`` as HCL to ``path`` (mode 0600: values may be secrets); returns ``path``."""
    try:
        text = hclwriter.dumps(variables)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"nomad-pack: variables cannot be written as HCL: {exc}") from None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def parse_job_status(output: str) -> Status:
    """``nomad job status`` output → running / stopped (dead) / unknown (pending, or unparsable)."""
    match = _STATUS.search(output)
    if match is None:
        return Status("unknown", "no status in nomad's output")
    return _STATES.get(match.group(1).lower(), Status("unknown", match.group(1)))


def git_auth_env(source: str, token: str, base: Mapping[str, str]) -> dict[str, str]:
    """``GIT_CONFIG_*`` variables giving git an ``Authorization`` header for ``source``'s host only."""
    host_path = re.sub(r"^(git::)?[a-z]+://", "", source)
    host = host_path.split("/", 1)[0].rsplit("@", 1)[-1]
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    count = base.get("GIT_CONFIG_COUNT", "")
    index = int(count) if count.isdigit() else 0
    return {
        "GIT_CONFIG_COUNT": str(index + 1),
        f"GIT_CONFIG_KEY_{index}": f"http.https://{host}/.extraheader",
        f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {basic}",
    }


def _checked(what: str, value: str) -> str:
    """A name used as a positional argument: it must not read as an option."""
    if what == "registry_source":
        if not value or value.startswith("-"):
            raise PluginError(f"nomad-pack: invalid {what}")
        return value
    if not _NAME.fullmatch(value):
        raise PluginError(f"nomad-pack: invalid {what} {value!r} (letters, digits, '.', '_' and '-')")
    return value


def _no_such_job(lines: Sequence[str]) -> bool:
    return _NO_SUCH_JOB.search("".join(lines)) is not None

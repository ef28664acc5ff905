"""``cs init``: detect a project (Dockerfile → ``csdocker``, else ``railpack``) and write its file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cloudstation.config.hclwriter import quote
from cloudstation.errors import UsageError

_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")


def project_name(directory: Path) -> str:
    """The repository name from the git remote ``origin``, else the folder name, made valid."""
    name = ""
    try:
        url = subprocess.run(
            ["git", "-C", str(directory), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        url = ""
    if url:
        name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    if not name:
        name = directory.resolve().name
    cleaned = _NAME_RE.sub("-", name).strip("-")
    return cleaned or "app"


def render_project_file(directory: Path) -> str:
    """The commented ``cloudstation.hcl`` for the project in ``directory``."""
    name = project_name(directory)
    has_dockerfile = (directory / "Dockerfile").is_file()
    builder = "csdocker" if has_dockerfile else "railpack"
    why = "a Dockerfile was found" if has_dockerfile else "no Dockerfile: railpack detects the language"
    return f"""# cloudstation.hcl: what `cs up` builds, pushes, deploys and releases.
# Check it with `cs validate`; `cs plugins` lists every plugin and its attributes.
project = {quote(name)}

# Variables resolve from the first set environment variable in `env`, else `default`.
# Sensitive values are redacted from every log line.
variable "registry_password" {{
  type      = "string"
  sensitive = true
  env       = ["REGISTRY_PASSWORD"]
  default   = ""
}}

app {quote(name)} {{
  path = "."

  # Builder: {why}.
  build {{
    use   = {quote(builder)}
    image = {quote(name)}
    tag   = "latest"
  }}

  # Registry (optional): push the image somewhere the platform can pull it.
  # registry {{
  #   use      = "docker"
  #   image    = "registry.example.com/{name}"
  #   username = "deploy"
  #   password = var.registry_password
  # }}

  # Platform: where it runs. `nomad-pack` deploys to Nomad; `process` runs it locally.
  deploy {{
    use             = "nomad-pack"
    deployment_name = {quote(name)}
  }}

  # Release (optional): e.g. wait until the app answers.
  # release {{
  #   use = "http-check"
  # }}

  config {{
    env = {{
      PORT = "3000"
    }}
  }}
}}
"""


def write_project_file(directory: Path, *, force: bool = False) -> Path:
    """Write ``directory/cloudstation.hcl``; refuse to overwrite one without ``force``."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    path = directory / "cloudstation.hcl"
    if path.exists() and not force:
        raise UsageError(f"{path} already exists (use --force to overwrite it)")
    path.write_text(render_project_file(directory))
    return path

"""The dispatch project is built as the model directly; loading the file it writes gives the same model.

So the ``cloudstation.hcl`` a user reads in the work dir is exactly what ran (its locations too), and
its text never holds a secret value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudstation.config.loader import parse_config
from cloudstation.dispatch.params_models import (
    BuildOptions,
    DeployImageParams,
    DeployParamsBase,
    DeployRepositoryParams,
    NetworkPort,
    RegistrySettings,
)
from cloudstation.dispatch.project import DispatchProject

SECRETS = ("nomad-token-canary", "registry-pass-canary", "pack-token-canary", "vault-value-canary")
IDENTITY: dict[str, Any] = {"job_id": "web", "deployment_id": "dep-1", "service_id": "svc-1"}
FULL = DeployRepositoryParams(
    **IDENTITY,
    nomad_token=SECRETS[0],
    nomad_address="http://127.0.0.1:4646",
    build=BuildOptions(
        registry_username="robot",
        registry_password=SECRETS[1],
        static_build_env={"MODE": "prod"},
        build_args={"NOTE": 'a "quoted" ${not} %{a} template\nline 2'},
        build_command="make",
        start_command="node server.js",
    ),
    registry=RegistrySettings(registry_token=SECRETS[2], registry_name="packs", registry_source="github.com/a/b"),
)
NETWORKS = (NetworkPort(port_number=8080, public=True, domain="web.example.com"), NetworkPort(port_number=5432))


@pytest.mark.parametrize(
    ("params", "builder"),
    [
        (FULL, "csdocker"),
        (FULL, "railpack"),
        (FULL, "exec"),
        (DeployRepositoryParams(**IDENTITY, deploy="process", command="serve"), "nixpacks"),
        (DeployRepositoryParams(**IDENTITY, build=BuildOptions(disable_push=True)), "docker"),
        (DeployImageParams(**IDENTITY, image_name="nginx", nomad_token=SECRETS[0]), "noop"),
    ],
)
@pytest.mark.parametrize("networks", [(), NETWORKS])
def test_the_written_file_loads_as_the_model_it_documents(
    tmp_path: Path, params: DeployParamsBase, builder: str, networks: tuple[NetworkPort, ...]
) -> None:
    project = DispatchProject(
        params,
        app_path="source/app",
        file=tmp_path / "cloudstation.hcl",
        build_env={"API_KEY": SECRETS[3]},
        env={"REGISTRY_URL": "reg.example.com"},
    )
    rendered = project.render(builder, networks)
    config = rendered.write()
    text = (tmp_path / "cloudstation.hcl").read_text()
    assert text == rendered.text
    for secret in SECRETS:
        assert secret not in text
    # the values the file's sensitive variables read (from an environment only the test sets)
    env = {variable.env[0]: str(variable.value) for variable in config.variables.values()}
    assert parse_config(text, str(tmp_path / "cloudstation.hcl"), env) == config
    assert SECRETS[3] in config.sensitive_values

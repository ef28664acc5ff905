"""Vault at build time (issue 10, point 3), end to end against a real OpenBao: only ``secretsPath`` is read
(KV v2 and v1), a missing path and a revoked secret id fail the deployment with a clean one-line error."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import (
    dispatch,
    docker_steps,
    log_text,
    no_canary,
    outcome_events,
    pack_vars,
    repo_params,
    stored,
    task_env,
)
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin
from tests.natsserver import NatsServer
from tests.secrets import openbao as bao
from tests.secrets.openbao import OpenBao

fake_bin = fakebin.fake_bin  # the fixtures
openbao = bao.openbao


# ------------------------------------------------------------------------- 3. Vault at build time


def test_only_secrets_path_is_read_at_build_time_from_a_real_vault(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, openbao: OpenBao
) -> None:
    secret = "CANARY-vault-" + uuid.uuid4().hex[:8]
    path = openbao.put_kv2(f"prj-1/svc-{uuid.uuid4().hex[:6]}", {"API_KEY": secret, "PORT": 42})
    role = openbao.approle(path)  # may read the service path only: "shared" or "db" would be refused
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    params, extra = repo_params(
        tmp_path,
        {"Dockerfile": "FROM scratch\n"},
        projectId="prj-1",
        vaultAddress=openbao.url,
        roleId=role.role_id,
        secretId=role.secret_id,
        secretsPath=path,
        sharedSecretPath="shared",
        vaultLinkedSecretPaths=[{"prefix": "DB_", "secretPath": "db"}],
        build={"disablePush": True},
    )
    res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    build = docker_steps(fake_bin)[0]
    assert build.args[:1] == ["build"] and "--build-arg" in build.args and "API_KEY" in build.args
    assert build.env["API_KEY"] == secret and build.env["PORT"] == "42"
    # the shared and linked paths are the job's, read at run time (kv/data/<projectId>/<name>)
    variables = pack_vars(tmp_path)
    assert variables["secret_path"] == path
    assert variables["shared_secret_path"] == "shared"
    assert variables["vault_linked_secrets"] == [{"prefix": "DB_", "secret_path": "db"}]
    text = log_text(stored(nats_server))
    no_canary(res.stdout, res.stderr, text, extra=(secret, role.secret_id, role.role_id))

    openbao.revoke_secret_id(role)
    env["CS_WORK_DIR"] = str(tmp_path / "work-2")
    again = dispatch(cs, "deploy-repository", {**params, "deploymentId": "dep-2"}, {**env, **extra})
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == "cs: error: vault: login (auth/approle/login): HTTP 400 Bad Request"
    assert outcome_events(stored(nats_server))[-2][0] == "deployment.failed"
    no_canary(again.stdout, again.stderr, extra=(secret, role.secret_id, role.role_id))


def test_a_kv1_secrets_path_and_a_missing_one_from_a_real_vault(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, openbao: OpenBao
) -> None:
    secret = "CANARY-kv1-" + uuid.uuid4().hex[:8]
    kv1 = openbao.put_kv1(f"svc-{uuid.uuid4().hex[:6]}", {"TOKEN": secret})
    missing = f"{bao.KV2_MOUNT}/data/nothing-{uuid.uuid4().hex[:6]}"
    role = openbao.approle(kv1, missing)
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    vault = {"vaultAddress": openbao.url, "roleId": role.role_id, "secretId": role.secret_id}
    params, extra = repo_params(
        tmp_path, {"Dockerfile": "FROM scratch\n"}, secretsPath=kv1, build={"disablePush": True}, **vault
    )
    res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    assert fake_bin.calls("docker")[0].env["TOKEN"] == secret

    env["CS_WORK_DIR"] = str(tmp_path / "work-2")
    res = dispatch(cs, "deploy-repository", {**params, "secretsPath": missing}, {**env, **extra})
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == f'cs: error: vault: read "{missing}": HTTP 404 Not Found'
    assert outcome_events(stored(nats_server))[-2][0] == "deployment.failed"
    no_canary(res.stdout, res.stderr, log_text(stored(nats_server)), extra=(secret, role.secret_id, role.role_id))

"""The Vault secrets fetch against a real server: OpenBao's dev server (see tests/secrets/openbao.py), with a
real AppRole (role id + secret id), KV v2 and KV v1 mounts, a missing path, a path the policy denies, a
revoked secret id. What a real server cannot be made to do (malformed answers, redirects, silence) stays
with the recording fake in test_vault.py."""

from __future__ import annotations

import uuid

import pytest

from cloudstation.errors import ExitCode
from cloudstation.secrets.vault import (
    LinkedSecretPath,
    VaultLoginError,
    VaultReadError,
    VaultSettings,
    fetch_secrets,
)
from tests.secrets import openbao as bao
from tests.secrets.openbao import AppRole, OpenBao

openbao = bao.openbao  # the session fixture

SECRET_VALUE = "CANARY-db-password-" + uuid.uuid4().hex[:8]


def settings(server: OpenBao, role: AppRole, path: str, **changes: object) -> VaultSettings:
    values: dict[str, object] = {
        "address": server.url,
        "role_id": role.role_id,
        "secret_id": role.secret_id,
        "secrets_path": path,
        "timeout": 10.0,
    }
    return VaultSettings(**(values | changes))  # type: ignore[arg-type]


def assert_clean(err: BaseException, role: AppRole) -> None:
    message = str(err)
    assert message.startswith("vault: ") and "\n" not in message
    for secret in (role.role_id, role.secret_id, SECRET_VALUE, bao.ROOT_TOKEN, "hvs.", "s."):
        assert secret not in message, secret


def _unique() -> str:
    return "app-" + uuid.uuid4().hex[:8]


def test_approle_login_and_a_kv2_read(openbao: OpenBao) -> None:
    path = openbao.put_kv2(_unique(), {"DB_PASSWORD": SECRET_VALUE, "PORT": 5432, "DEBUG": False, "RATIO": 1.5})
    role = openbao.approle(path)
    assert fetch_secrets(settings(openbao, role, path)) == {
        "DB_PASSWORD": SECRET_VALUE,
        "PORT": "5432",  # numbers as their JSON text (the original printed 5432.000000)
        "DEBUG": "false",
        "RATIO": "1.5",
    }


def test_kv1_read(openbao: OpenBao) -> None:
    path = openbao.put_kv1(_unique(), {"API_KEY": SECRET_VALUE, "ttl": "1h"})
    role = openbao.approle(path)
    assert fetch_secrets(settings(openbao, role, "/" + path + "/")) == {"API_KEY": SECRET_VALUE, "ttl": "1h"}


def test_kv1_secret_with_a_data_key_beside_others_is_not_taken_for_kv2(openbao: OpenBao) -> None:
    path = openbao.put_kv1(_unique(), {"data": {"x": 1}, "OTHER": "o"})
    role = openbao.approle(path)
    assert fetch_secrets(settings(openbao, role, path)) == {"data": '{"x":1}', "OTHER": "o"}


def test_kv2_and_kv1_linked_paths_in_order_without_overwrite(openbao: OpenBao) -> None:
    service = openbao.put_kv2(_unique(), {"A": "svc"})
    linked = openbao.put_kv1(_unique(), {"URL": "postgres://db", "A": "linked"})
    shared = openbao.put_kv2(_unique(), {"A": "shared", "TEAM": "t", "DB_URL": "x"})
    role = openbao.approle(service, linked, shared)
    found = fetch_secrets(
        settings(openbao, role, service, linked_paths=(LinkedSecretPath("DB_", linked),), shared_secret_path=shared)
    )
    assert found == {"A": "svc", "DB_URL": "postgres://db", "DB_A": "linked", "TEAM": "t"}


def test_path_characters_reach_the_server_escaped(openbao: OpenBao) -> None:
    path = openbao.put_kv1(_unique() + "/team@x/app=1", {"K": "v"})
    role = openbao.approle(path)
    assert fetch_secrets(settings(openbao, role, path)) == {"K": "v"}


def test_a_missing_path_names_the_path_and_status(openbao: OpenBao) -> None:
    missing = f"{bao.KV2_MOUNT}/data/{_unique()}"
    role = openbao.approle(missing)
    with pytest.raises(VaultReadError) as info:
        fetch_secrets(settings(openbao, role, missing))
    assert str(info.value) == f'vault: read "{missing}": HTTP 404 Not Found'
    assert info.value.exit_code == ExitCode.FAILED
    assert_clean(info.value, role)


def test_a_path_the_policy_denies_is_403(openbao: OpenBao) -> None:
    allowed = openbao.put_kv2(_unique(), {"A": SECRET_VALUE})
    denied = openbao.put_kv1(_unique(), {"B": SECRET_VALUE})
    role = openbao.approle(allowed)
    with pytest.raises(VaultReadError) as info:
        fetch_secrets(settings(openbao, role, allowed, linked_paths=(LinkedSecretPath("L_", denied),)))
    assert str(info.value) == f'vault: read "{denied}": HTTP 403 Forbidden'
    assert_clean(info.value, role)


def test_a_revoked_secret_id_is_refused_at_login(openbao: OpenBao) -> None:
    path = openbao.put_kv2(_unique(), {"A": SECRET_VALUE})
    role = openbao.approle(path)
    assert fetch_secrets(settings(openbao, role, path)) == {"A": SECRET_VALUE}
    openbao.revoke_secret_id(role)
    with pytest.raises(VaultLoginError) as info:
        fetch_secrets(settings(openbao, role, path))
    assert str(info.value) == "vault: login (auth/approle/login): HTTP 400 Bad Request"
    assert info.value.exit_code == ExitCode.FAILED
    assert_clean(info.value, role)


def test_a_wrong_role_id_is_refused_at_login(openbao: OpenBao) -> None:
    path = openbao.put_kv2(_unique(), {"A": SECRET_VALUE})
    role = openbao.approle(path)
    wrong = AppRole(role.name, "CANARY-wrong-role-" + uuid.uuid4().hex[:6], role.secret_id)
    with pytest.raises(VaultLoginError) as info:
        fetch_secrets(settings(openbao, wrong, path))
    assert str(info.value).startswith("vault: login (auth/approle/login): HTTP 400")
    assert_clean(info.value, wrong)


def test_a_custom_approle_mount(openbao: OpenBao) -> None:
    mount = "ci-" + uuid.uuid4().hex[:6] + "/approle"
    openbao.api("POST", f"sys/auth/{mount}", {"type": "approle"})
    path = openbao.put_kv2(_unique(), {"K": "v"})
    openbao.api("PUT", "sys/policies/acl/custom-mount", {"policy": f'path "{path}" {{ capabilities = ["read"] }}'})
    openbao.api("POST", f"auth/{mount}/role/r", {"token_policies": ["custom-mount"]})
    role_id = openbao.api("GET", f"auth/{mount}/role/r/role-id")["data"]["role_id"]
    secret_id = openbao.api("POST", f"auth/{mount}/role/r/secret-id")["data"]["secret_id"]
    role = AppRole("r", role_id, secret_id)
    assert fetch_secrets(settings(openbao, role, path, approle_mount=mount)) == {"K": "v"}
    with pytest.raises(VaultLoginError):
        fetch_secrets(settings(openbao, role, path))  # the default mount does not know this role

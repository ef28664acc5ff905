"""The Vault secrets fetch against a recording fake Vault on 127.0.0.1, for what the real server of
test_vault_openbao.py cannot show or be made to do: the exact requests cs sends (headers, token, order,
escaping), forced statuses, malformed answers, redirects, silence and refused connections."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from cloudstation.errors import CsError, ExitCode, UsageError
from cloudstation.secrets.vault import (
    LinkedSecretPath,
    VaultConfigError,
    VaultError,
    VaultLoginError,
    VaultReadError,
    VaultSettings,
    VaultUnreachableError,
    fetch_secrets,
    merge_into_env,
    secret_to_str,
)
from tests.secrets.vault_fake_server import FakeVault, RunningFakeVault

ROLE_ID = "CANARY-role-id-7f3a"
SECRET_ID = "CANARY-secret-id-9c1d"
SECRET_VALUE = "CANARY-db-password-42"


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with RunningFakeVault(FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID)) as fake:
        yield fake


def settings_for(fake: FakeVault, path: str = "secret/data/app", **changes: Any) -> VaultSettings:
    values: dict[str, Any] = {
        "address": fake.url,
        "role_id": ROLE_ID,
        "secret_id": SECRET_ID,
        "secrets_path": path,
        "timeout": 5.0,
    }
    return VaultSettings(**(values | changes))


def assert_requests(fake: FakeVault, expected: list[tuple[str, str, str | None, Any]]) -> None:
    """Compare (method, path, X-Vault-Token, body) of every request, and the headers hvac must send."""
    seen = [(r.method, r.path, r.token, r.body) for r in fake.requests]
    assert seen == expected
    for request in fake.requests:
        assert request.headers.get("x-vault-request") == "true"
        if request.method == "POST":
            assert request.headers.get("content-type") == "application/json"


def assert_clean(err: BaseException, *extra: str) -> None:
    message = str(err)
    assert "\n" not in message
    for secret in (ROLE_ID, SECRET_ID, SECRET_VALUE, "CANARY", "hvs.fake-token", *extra):
        assert secret not in message
    assert message.startswith("vault: ")


LOGIN = ("POST", "/v1/auth/approle/login", None, {"role_id": ROLE_ID, "secret_id": SECRET_ID})


# --------------------------------------------------------------------------------------- happy paths


def test_kv2_read_returns_data_data(vault: FakeVault) -> None:
    vault.kv2["secret/data/app"] = {"DB_PASSWORD": SECRET_VALUE, "PORT": 5432, "DEBUG": False, "RATIO": 1.5}
    secrets = fetch_secrets(settings_for(vault))
    assert secrets == {"DB_PASSWORD": SECRET_VALUE, "PORT": "5432", "DEBUG": "false", "RATIO": "1.5"}
    assert_requests(vault, [LOGIN, ("GET", "/v1/secret/data/app", "hvs.fake-token-1", None)])
    assert "x-vault-token" not in vault.requests[0].headers


def test_service_linked_and_shared_paths_in_order_without_overwrite(vault: FakeVault) -> None:
    vault.kv2["secret/data/svc"] = {"A": "svc", "SHARED_ONLY_CLASH": "svc"}
    vault.kv1["kv/db"] = {"URL": "postgres://db", "A": "linked"}
    vault.kv2["secret/data/other"] = {"KEY": "k"}
    vault.kv2["secret/data/team"] = {"A": "shared", "SHARED_ONLY_CLASH": "shared", "TEAM": "t", "DB_URL": "x"}
    settings = settings_for(
        vault,
        "/secret/data/svc/",
        linked_paths=(LinkedSecretPath("DB_", "kv/db"), LinkedSecretPath("", "secret/data/other")),
        shared_secret_path="secret/data/team",
    )
    assert fetch_secrets(settings) == {
        "A": "svc",
        "SHARED_ONLY_CLASH": "svc",
        "DB_URL": "postgres://db",
        "DB_A": "linked",
        "KEY": "k",
        "TEAM": "t",
    }
    token = "hvs.fake-token-1"
    assert_requests(
        vault,
        [
            LOGIN,
            ("GET", "/v1/secret/data/svc", token, None),
            ("GET", "/v1/kv/db", token, None),
            ("GET", "/v1/secret/data/other", token, None),
            ("GET", "/v1/secret/data/team", token, None),
        ],
    )


def test_custom_approle_mount_and_an_ambient_vault_token_is_never_sent(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "CANARY-ambient-token")
    vault.approle_mount = "ci/approle"
    vault.kv2["secret/data/app"] = {}
    assert fetch_secrets(settings_for(vault, approle_mount="ci/approle")) == {}
    assert_requests(
        vault,
        [
            ("POST", "/v1/auth/ci/approle/login", None, {"role_id": ROLE_ID, "secret_id": SECRET_ID}),
            ("GET", "/v1/secret/data/app", "hvs.fake-token-1", None),
        ],
    )


def test_path_characters_are_escaped(vault: FakeVault) -> None:
    vault.kv1["kv/team@x/app=1"] = {"K": "v"}
    vault.force_status["kv/caf%C3%A9"] = 404
    assert fetch_secrets(settings_for(vault, "kv/team@x/app=1")) == {"K": "v"}
    with pytest.raises(VaultReadError):
        fetch_secrets(settings_for(vault, "kv/café"))
    assert vault.requests[-1].path == "/v1/kv/caf%C3%A9"


def test_a_deleted_kv2_version_reads_as_empty(vault: FakeVault) -> None:
    vault.raw_answers["secret/data/app"] = (200, b'{"data": {"data": null, "metadata": {"version": 2}}}')
    assert fetch_secrets(settings_for(vault)) == {}


# ------------------------------------------------------------------------------------------- errors


def test_login_403_stops_before_any_read(vault: FakeVault) -> None:
    vault.force_status["auth/approle/login"] = 403
    with pytest.raises(VaultLoginError) as info:
        fetch_secrets(settings_for(vault))
    assert str(info.value) == "vault: login (auth/approle/login): HTTP 403 Forbidden"
    assert info.value.exit_code == ExitCode.FAILED
    assert_clean(info.value)
    assert_requests(vault, [LOGIN])


@pytest.mark.parametrize(
    "answer",
    [b'{"auth": null}', b'{"auth": {"client_token": ""}}', b"not json", b"[]", b'{"auth": {"client_token": 7}}'],
)
def test_login_answer_without_a_token(vault: FakeVault, answer: bytes) -> None:
    vault.raw_answers["auth/approle/login"] = (200, answer)
    with pytest.raises(VaultLoginError) as info:
        fetch_secrets(settings_for(vault))
    assert str(info.value) == "vault: login (auth/approle/login): the answer has no auth.client_token"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((200, b"<html>"), 'vault: read "secret/data/app": the answer has no data object'),
        ((200, b'{"data": null}'), 'vault: read "secret/data/app": the answer has no data object'),
        ((200, b'{"data": ["CANARY"]}'), 'vault: read "secret/data/app": the answer has no data object'),
        ((500, b'{"errors": ["CANARY internal"]}'), 'vault: read "secret/data/app": HTTP 500 Internal Server Error'),
        ((599, b""), 'vault: read "secret/data/app": HTTP 599'),
    ],
)
def test_bad_read_answers(vault: FakeVault, answer: tuple[int, bytes], message: str) -> None:
    vault.raw_answers["secret/data/app"] = answer
    with pytest.raises(VaultReadError) as info:
        fetch_secrets(settings_for(vault))
    assert str(info.value) == message
    assert_clean(info.value)


def test_redirects_are_not_followed(vault: FakeVault) -> None:
    vault.force_status["secret/data/app"] = 307
    with pytest.raises(VaultReadError) as info:
        fetch_secrets(settings_for(vault))
    assert str(info.value) == 'vault: read "secret/data/app": HTTP 307 Temporary Redirect'
    assert len(vault.requests) == 2


def test_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = VaultSettings(f"http://127.0.0.1:{port}", ROLE_ID, SECRET_ID, "secret/data/app", timeout=2.0)
    with pytest.raises(VaultUnreachableError) as info:
        fetch_secrets(settings)
    assert str(info.value) == "vault: login (auth/approle/login): cannot reach the server (ConnectionError)"
    assert_clean(info.value)


def test_silent_server_times_out() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepts connections (backlog) but never answers
        port = sock.getsockname()[1]
        settings = VaultSettings(f"http://127.0.0.1:{port}", ROLE_ID, SECRET_ID, "secret/data/app", timeout=0.3)
        with pytest.raises(VaultUnreachableError) as info:
            fetch_secrets(settings)
    assert str(info.value) == "vault: login (auth/approle/login): no answer within 0.3s"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"address": ""}, "vault: address, role id, secret id and secrets path are all required"),
        ({"role_id": " "}, "vault: address, role id, secret id and secrets path are all required"),
        ({"secret_id": ""}, "vault: address, role id, secret id and secrets path are all required"),
        ({"secrets_path": ""}, "vault: address, role id, secret id and secrets path are all required"),
        ({"address": "vault:8200"}, "vault: invalid address (expected http(s)://host[:port])"),
        ({"address": "ftp://vault"}, "vault: invalid address (expected http(s)://host[:port])"),
        ({"address": "https://u:CANARY@vault"}, "vault: invalid address (expected http(s)://host[:port])"),
        ({"address": "https://vault/v1"}, "vault: invalid address (expected http(s)://host[:port])"),
        ({"address": "https://vault?x=CANARY"}, "vault: invalid address (expected http(s)://host[:port])"),
        ({"secrets_path": "/"}, "vault: invalid secrets path in secretsPath"),
        ({"secrets_path": "secret/../sys/CANARY"}, "vault: invalid secrets path in secretsPath"),
        ({"secrets_path": "secret//app"}, "vault: invalid secrets path in secretsPath"),
        ({"secrets_path": "secret/a b"}, "vault: invalid secrets path in secretsPath"),
        ({"secrets_path": "secret/app?list=CANARY"}, "vault: invalid secrets path in secretsPath"),
        ({"secrets_path": "secret/app#CANARY"}, "vault: invalid secrets path in secretsPath"),
        ({"secrets_path": "secret/%2e%2e"}, "vault: invalid secrets path in secretsPath"),
        ({"shared_secret_path": "a\nb"}, "vault: invalid secrets path in sharedSecretPath"),
        (
            {"linked_paths": (LinkedSecretPath("X", "ok"), LinkedSecretPath("Y", "../CANARY"))},
            "vault: invalid secrets path in vaultLinkedSecretPaths[1]",
        ),
        ({"approle_mount": "../x"}, "vault: invalid AppRole mount path"),
    ],
)
def test_config_errors_are_usage_errors_sent_nowhere(vault: FakeVault, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(VaultConfigError) as info:
        fetch_secrets(settings_for(vault, **changes))
    assert str(info.value) == message
    assert isinstance(info.value, UsageError) and isinstance(info.value, VaultError)
    assert info.value.exit_code == ExitCode.USAGE
    assert_clean(info.value)
    assert vault.requests == []


def test_every_vault_error_is_a_cs_error() -> None:
    for cls in (VaultConfigError, VaultUnreachableError, VaultLoginError, VaultReadError):
        assert issubclass(cls, VaultError) and issubclass(cls, CsError)


# ------------------------------------------------------------------------------------------ helpers


def test_settings_hide_credentials() -> None:
    settings = VaultSettings("https://vault:8200", ROLE_ID, SECRET_ID, "secret/data/app")
    assert ROLE_ID not in repr(settings) and SECRET_ID not in repr(settings)
    assert settings.enabled
    assert settings.credentials() == {ROLE_ID, SECRET_ID}
    assert not VaultSettings("", "", "", "").enabled


def test_merge_into_env_never_overwrites() -> None:
    env = {"NODE_ENV": "production", "API_KEY": "from-build-env"}
    merged = merge_into_env(env, {"API_KEY": "from-vault", "DB_URL": "postgres://x"})
    assert merged == {"NODE_ENV": "production", "API_KEY": "from-build-env", "DB_URL": "postgres://x"}
    assert env == {"NODE_ENV": "production", "API_KEY": "from-build-env"}
    assert merge_into_env({}, {}) == {}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (5432, "5432"),
        (1.0e6, "1000000"),
        (0.25, "0.25"),
        ({"a": [1, "b"]}, '{"a":[1,"b"]}'),
        ([1, 2], "[1,2]"),
    ],
)
def test_secret_to_str(value: object, text: str) -> None:
    assert secret_to_str(value) == text

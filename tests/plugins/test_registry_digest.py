"""The registry's digest for a pushed tag (``_registry.manifest_digest``), and the engine probes' parsers.

The real registry (htpasswd) is covered by ``test_docker_real.py``; here the fake registry plays token
auth, a missing ``Docker-Content-Digest`` header, refused credentials and a missing manifest.
"""

from __future__ import annotations

import json
import os

import pytest

from cloudstation.plugins.builtin._engine import ImageConfig, _server, parse_image_config, probe
from cloudstation.plugins.builtin._registry import DigestError, Reference, manifest_digest, split_reference
from tests.plugins.fake_registry import DIGEST, TOKEN, FakeRegistry, fake_registry

PASSWORD = "CANARY-digest-pass-61f0"


def test_basic_auth_digest_from_the_header() -> None:
    with fake_registry(FakeRegistry(auth="basic", password=PASSWORD)) as fake:
        digest = manifest_digest(f"{fake.host}/team/web:v1", username="robot", password=PASSWORD)
    assert digest == DIGEST
    assert [(m, p) for m, p, _ in fake.requests] == [("HEAD", "/v2/team/web/manifests/v1")] * 2
    assert fake.requests[0][2] == "" and fake.requests[1][2] == fake.basic()  # credentials only once asked


def test_bearer_token_flow() -> None:
    with fake_registry(FakeRegistry(auth="bearer", password=PASSWORD)) as fake:
        digest = manifest_digest(f"{fake.host}/team/web:v1", username="robot", password=PASSWORD)
    assert digest == DIGEST
    methods = [(m, p.split("?")[0], a) for m, p, a in fake.requests]
    assert methods == [
        ("HEAD", "/v2/team/web/manifests/v1", ""),
        ("GET", "/token", fake.basic()),
        ("HEAD", "/v2/team/web/manifests/v1", f"Bearer {TOKEN}"),
    ]
    assert "scope=repository%3Ateam%2Fweb%3Apull" in fake.requests[1][1] and "service=fake" in fake.requests[1][1]


def test_without_the_digest_header_the_manifest_bytes_are_hashed() -> None:
    with fake_registry(FakeRegistry(auth="none", send_digest_header=False)) as fake:
        assert manifest_digest(f"{fake.host}/team/web:v1") == DIGEST
    assert [m for m, _, _ in fake.requests] == ["HEAD", "GET"]


@pytest.mark.parametrize(
    ("fake", "ref", "username", "message"),
    [
        (FakeRegistry(auth="basic", password=PASSWORD), "team/web:v1", "robot", "refused the credentials"),
        (FakeRegistry(auth="basic", password=PASSWORD), "team/web:v1", "", "asks for credentials and none"),
        (FakeRegistry(auth="bearer", password=PASSWORD), "team/web:v1", "robot", "token service of .* answered 401"),
        (FakeRegistry(auth="none"), "team/web:v9", "", r"has no manifest team/web:v9 \(404\)"),
    ],
)
def test_digest_errors_are_one_line_and_secret_free(fake: FakeRegistry, ref: str, username: str, message: str) -> None:
    wrong = "CANARY-wrong-pass-93aa"
    with fake_registry(fake) as running, pytest.raises(DigestError, match=message) as caught:
        manifest_digest(f"{running.host}/{ref}", username=username, password=wrong if username else "")
    text = str(caught.value)
    assert "\n" not in text and wrong not in text and PASSWORD not in text


def test_unreachable_registry_names_each_scheme() -> None:
    with fake_registry(FakeRegistry()) as fake:
        host = fake.host
    with pytest.raises(DigestError, match=rf"^registry {host} unreachable \(https: .+; http: .+\)$"):
        manifest_digest(f"{host}/team/web:v1")


def test_only_loopback_or_insecure_registries_are_asked_over_http() -> None:
    # a non-loopback name that does not resolve: only https is tried unless insecure
    with pytest.raises(DigestError, match=r"unreachable \(https: [^;]+\)$"):
        manifest_digest("registry.invalid/team/web:v1")
    with pytest.raises(DigestError, match=r"unreachable \(https: .+; http: .+\)$"):
        manifest_digest("registry.invalid/team/web:v1", insecure=True)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("localhost:5000/team/web:v1", Reference("localhost:5000", "team/web", "v1")),
        ("reg.example.com/web", Reference("reg.example.com", "web", "latest")),
        ("nginx:1.27", Reference("registry-1.docker.io", "library/nginx", "1.27")),
        ("docker.io/acme/api:2", Reference("registry-1.docker.io", "acme/api", "2")),
        ("127.0.0.1:5000/web:v1", Reference("127.0.0.1:5000", "web", "v1")),
    ],
)
def test_split_reference(ref: str, expected: Reference) -> None:
    assert split_reference(ref) == expected


def test_parse_image_config() -> None:
    inspect = [
        {
            "Id": "sha256:" + "1" * 64,
            "Config": {
                "ExposedPorts": {"9090/tcp": {}, "8080/tcp": {}, "53/udp": {}},
                "Env": ["PATH=/bin", "PORT=3000"],
            },
        }
    ]
    config = parse_image_config(json.dumps(inspect, indent=4))
    assert config == ImageConfig("sha256:" + "1" * 64, (53, 8080, 9090), {"PATH": "/bin", "PORT": "3000"})
    assert config.ports == (53, 8080, 9090)  # EXPOSE wins over PORT=
    assert parse_image_config('[{"Config": {"Env": ["PORT=5000"]}}]').ports == (5000,)
    assert parse_image_config('[{"Config": {"Env": ["PORT=http"], "ExposedPorts": null}}]').ports == ()
    assert parse_image_config('[{"Config": {"Env": ["PORT=70000"]}}]').ports == ()
    assert parse_image_config("not json") == ImageConfig()
    assert parse_image_config("[]") == ImageConfig()


def test_server_names_the_engine() -> None:
    podman = {"Server": {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}}
    docker = {"Server": {"Version": "27.3.1", "Components": [{"Name": "Engine", "Version": "27.3.1"}]}}
    assert _server(json.dumps(podman)) == "Podman Engine 4.3.1"
    assert _server(json.dumps(docker)) == "Docker Engine 27.3.1"
    assert _server(json.dumps({"Client": {"Version": "4.3.1"}})) is None  # podman under Docker's name
    assert _server("") is None


async def test_probe_is_bounded_and_reports_a_missing_tool() -> None:
    env = dict(os.environ)
    assert await probe(["sh", "-c", "echo out; echo err >&2; exit 3"], env=env) == (3, "out\n", "err\n")
    rc, out, err = await probe(["sleep", "17.5"], env=env, timeout=0.2)
    assert (rc, out) == (124, "") and err == "`sleep 17.5` gave no answer in 0.2s"
    assert await probe(["no-such-tool-cs"], env=env) == (127, "", "no-such-tool-cs: not found on PATH")

"""The backend client against a recording local HTTP server: request shapes, retries on 5xx and on a
server that is down, best-effort step updates, and a canary access token absent from logs and errors."""

from __future__ import annotations

import logging

import pytest

from cloudstation.backend import BackendClient, BackendError, NetworkEntry
from cloudstation.errors import ConfigError
from cloudstation.redaction import redact_query_token
from cloudstation.vocabulary import Step

from .recording_backend import closed_port_url, recording_backend

CANARY = "cs-CANARY-access-token-0123456789"
STEP = "/api/local/deployment-step/update"
DOMAIN = "/api/local/ask-domain"
SERVICE = "/api/local/service-update/"


@pytest.fixture(autouse=True)
def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def client(base_url: str, **options: float | str) -> BackendClient:
    return BackendClient(base_url, CANARY, backoff=0.01, **options)  # type: ignore[arg-type]


def assert_canary_absent(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    assert caplog.records, "expected some log records (httpx logs each request)"
    assert CANARY not in caplog.text
    assert all(CANARY not in str(record.args) for record in caplog.records)
    for text in texts:
        assert CANARY not in text


async def test_update_step_request_shape(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend({STEP: [(200, {"success": True})]}) as backend:
        async with client(backend.base_url + "/") as api:
            assert await api.update_step("dep-1", "git_repo", Step.CLONE, "in_progress")
            assert await api.update_step("dep-1", "git_repo", Step.BUILD, "failed", error=f"boom {CANARY}")
    first, second = backend.requests
    assert (first.method, first.path, first.query) == ("PUT", STEP, {"accessToken": [CANARY]})
    assert first.headers["Content-Type"] == "application/json"
    assert first.body == {
        "deploymentId": "dep-1",
        "deployment_type": "git_repo",
        "step": "clone",
        "status": "in_progress",
    }
    assert second.body["error"] == "boom ***"
    assert any("HTTP Request: PUT" in record.getMessage() for record in caplog.records)
    assert any("accessToken=***" in record.getMessage() for record in caplog.records)  # httpx's line, masked
    assert_canary_absent(caplog)


async def test_step_update_retries_5xx_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend({STEP: [(500, None), (502, None), (503, None), (200, {})]}) as backend:
        async with client(backend.base_url) as api:
            assert await api.update_step("dep-1", "git_repo", Step.DEPLOY, "completed")
    assert len(backend.requests) == 4
    assert_canary_absent(caplog)


async def test_step_update_gives_up_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend({STEP: [(500, {"message": f"db down, token {CANARY}"})]}) as backend:
        async with client(backend.base_url) as api:
            assert not await api.update_step("dep-1", "git_repo", Step.RELEASE, "completed")
    assert len(backend.requests) == 4  # 1 try + 3 retries
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "release/completed of deployment dep-1" in warnings[0]
    assert "HTTP 500" in warnings[0] and "after 4 attempts" in warnings[0]
    assert_canary_absent(caplog)


async def test_step_update_4xx_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend({STEP: [(401, {"message": "bad token"})]}) as backend:
        async with client(backend.base_url) as api:
            assert not await api.update_step("dep-1", "git_repo", Step.CLONE, "failed")
    assert len(backend.requests) == 1
    assert_canary_absent(caplog)


async def test_backend_down_is_a_warning_not_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    async with client(closed_port_url(), request_timeout=2.0) as api:
        assert not await api.update_step("dep-1", "git_repo", Step.CLONE, "in_progress")
        with pytest.raises(BackendError) as caught:
            await api.ask_domain("svc-1")
    assert "ConnectError" in str(caught.value) and "after 4 attempts" in str(caught.value)
    assert CANARY not in str(caught.value)
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert CANARY not in caplog.text


async def test_invalid_step_is_a_warning() -> None:
    with recording_backend({STEP: [(200, {})]}) as backend:
        async with client(backend.base_url) as api:
            assert not await api.update_step("dep-1", "git_repo", "compile", "done")  # type: ignore[arg-type]
    assert backend.requests == []


@pytest.mark.parametrize(
    ("answered", "cluster", "expected"),
    [
        ("brave-otter", "apps.example.com", "brave-otter.apps.example.com"),
        ("brave-otter.apps.example.com", "apps.example.com", "brave-otter.apps.example.com"),
        ("brave-otter.", ".apps.example.com.", "brave-otter.apps.example.com"),
        ("brave-otter", "", "brave-otter"),
    ],
)
async def test_ask_domain(caplog: pytest.LogCaptureFixture, answered: str, cluster: str, expected: str) -> None:
    with recording_backend({DOMAIN: [(200, {"domain": answered})]}) as backend:
        async with client(backend.base_url, cluster_domain=cluster) as api:
            assert await api.ask_domain("svc-1") == expected
    (request,) = backend.requests
    assert (request.method, request.path) == ("GET", DOMAIN)
    assert request.query == {"serviceId": ["svc-1"], "accessToken": [CANARY]}
    assert_canary_absent(caplog)


async def test_ask_domain_retries_then_answers() -> None:
    with recording_backend({DOMAIN: [(503, None), (200, {"domain": "d"})]}) as backend:
        async with client(backend.base_url, cluster_domain="c.io") as api:
            assert await api.ask_domain("svc-1") == "d.c.io"
    assert len(backend.requests) == 2


@pytest.mark.parametrize("answer", [(200, {}), (200, {"domain": ""}), (200, {"domain": None})])
async def test_an_empty_domain_answer_is_no_domain_not_an_error(answer: tuple[int, object]) -> None:
    with recording_backend({DOMAIN: [answer]}) as backend:
        async with client(backend.base_url, cluster_domain="apps.example.com") as api:
            assert await api.ask_domain("svc-1") == ""  # never ".apps.example.com"
    assert len(backend.requests) == 1


@pytest.mark.parametrize(
    "answer", [(200, ["x"]), (200, "text"), (200, {"domain": 7}), (404, None), (201, {"domain": "d"})]
)
async def test_ask_domain_without_a_domain_raises(answer: tuple[int, object]) -> None:
    with recording_backend({DOMAIN: [answer]}) as backend:
        async with client(backend.base_url) as api:
            with pytest.raises(BackendError) as caught:
                await api.ask_domain("svc-1")
    assert str(caught.value).startswith("GET /api/local/ask-domain")
    assert CANARY not in str(caught.value)


async def test_update_service_body(caplog: pytest.LogCaptureFixture) -> None:
    networks: list[NetworkEntry] = [
        {
            "port": 3000,
            "type": "http",
            "public": True,
            "domain": "brave-otter.apps.example.com",
            "has_health_check": "yes",
            "health_check": {"type": "http", "path": "/health", "interval": "30s", "timeout": "5s"},
        },
        {"port": 5432, "type": "tcp", "public": False, "domain": "", "has_health_check": "no"},
    ]
    with recording_backend({SERVICE: [(200, {"message": "ok"})]}) as backend:
        async with client(backend.base_url) as api:
            await api.update_service("svc-1", networks, docker_user="1000")
    (request,) = backend.requests
    assert (request.method, request.path, request.query) == ("PUT", SERVICE, {"accessToken": [CANARY]})
    assert request.body == {"serviceId": "svc-1", "network": networks, "docker_user": "1000"}
    assert_canary_absent(caplog)


async def test_update_service_failure_raises() -> None:
    with recording_backend({SERVICE: [(500, {"error": "nope"})]}) as backend:
        async with client(backend.base_url) as api:
            with pytest.raises(BackendError, match=r"PUT /api/local/service-update/ failed after 4 attempts"):
                await api.update_service("svc-1", [])


@pytest.mark.parametrize(
    ("answers", "ok", "attempts"),
    [
        ([(429, None), (200, {})], True, 2),  # 429 is retried
        ([(503, None), (201, {"success": True})], True, 2),  # 201 is a success for the updates
        ([(501, None), (200, {})], False, 1),  # 501 is not retried (go-retryablehttp's policy)
        ([(204, None)], False, 1),  # a success code the original did not accept
        ([(500, None)] * 5, False, 4),  # 3 retries
    ],
)
async def test_the_originals_retry_policy_and_success_codes(
    answers: list[tuple[int, object]], ok: bool, attempts: int
) -> None:
    with recording_backend({STEP: answers}) as backend:
        async with client(backend.base_url) as api:
            assert await api.update_step("dep-1", "repository", Step.BUILD, "completed") is ok
    assert len(backend.requests) == attempts


async def test_a_retry_after_is_honoured_within_the_cap() -> None:
    with recording_backend({STEP: [(429, None), (200, {})]}) as backend:
        async with BackendClient(backend.base_url, CANARY, backoff=0.01, max_backoff=0.02) as api:
            assert await api.update_step("dep-1", "repository", Step.BUILD, "completed")
    assert len(backend.requests) == 2


def test_defaults_are_the_originals_and_the_waits_come_from_the_environment() -> None:
    from cloudstation.backend import client as module

    assert (module.DEFAULT_TIMEOUT, module.DEFAULT_RETRIES) == (30.0, 3)
    assert (module.DEFAULT_RETRY_WAIT_MIN, module.DEFAULT_RETRY_WAIT_MAX) == (1.0, 5.0)
    env = {"CS_BACKEND_RETRY_WAIT_MIN": "0.5", "CS_BACKEND_RETRY_WAIT_MAX": "0.1", "CS_BACKEND_TIMEOUT": "3"}
    api = BackendClient.from_params("http://127.0.0.1:9", CANARY, env)
    assert api is not None
    assert (api._backoff, api._max_backoff, api._http.timeout.read) == (0.5, 0.5, 3.0)
    default = BackendClient.from_params("http://127.0.0.1:9", CANARY, {})
    assert default is not None
    assert (default._backoff, default._max_backoff, default._retries, default._http.timeout.read) == (1.0, 5.0, 3, 30.0)
    for bad in ("-1", "soon", "nan", "1e9"):
        with pytest.raises(ConfigError, match="CS_BACKEND_RETRY_WAIT_MIN"):
            BackendClient.from_params("http://127.0.0.1:9", CANARY, {"CS_BACKEND_RETRY_WAIT_MIN": bad})


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="backendUrl"):
        BackendClient("ftp://backend", CANARY)
    with pytest.raises(ConfigError, match="access token"):
        BackendClient("http://127.0.0.1:1", "")


async def test_from_params_falls_back_to_env() -> None:
    env = {"BACKEND_URL": "http://127.0.0.1:9", "ACCESS_TOKEN": CANARY}
    assert BackendClient.from_params(None, None, {}) is None
    assert BackendClient.from_params("http://127.0.0.1:9", "", {}) is None
    from_env = BackendClient.from_params("", None, env)
    assert from_env is not None
    await from_env.aclose()


def test_redact_query_token() -> None:
    url = f"http://h/api?serviceId=s&accessToken={CANARY}&x=1"
    assert redact_query_token(url) == "http://h/api?serviceId=s&accessToken=***&x=1"

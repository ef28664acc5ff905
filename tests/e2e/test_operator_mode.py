"""``NATS_CREDS`` end to end against a real operator-mode nats-server (issue 11, item 11).

The server trusts one operator; its account is preloaded in a MEMORY resolver; users are JWTs signed
with real NKeys (``tests/natsjwt.py``). A valid user connects and publishes; a revoked or expired one is
refused with exit 77 and the event is kept in the outbox. No seed or JWT ever appears in the output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CsRunner
from tests.natsjwt import Operator
from tests.natsserver import NatsServer

DESTROYED = '{"id": "svc-op", "reason": "delete"}'


@dataclass
class OperatorServer:
    server: NatsServer
    good: Path
    revoked: Path
    expired: Path
    secrets: list[str]

    def env(self, creds: Path) -> dict[str, str]:
        return {"NATS_SERVERS": self.server.url, "NATS_CREDS": str(creds)}


@pytest.fixture
def operator_server(tmp_path: Path) -> Iterator[OperatorServer]:
    op = Operator()
    good, revoked, expired = (tmp_path / f"{name}.creds" for name in ("good", "revoked", "expired"))
    op.user_creds(good)
    op.revoke(op.user_creds(revoked))
    op.user_creds(expired, expires_in=-3600)
    server = NatsServer(tmp_path / "op", config=op.server_config() + "debug: true\n").start()
    secrets = []
    for creds in (good, revoked, expired):
        text = creds.read_text()
        jwt = text.split("-----BEGIN NATS USER JWT-----\n", 1)[1].split("\n", 1)[0]
        seed = text.split("-----BEGIN USER NKEY SEED-----\n", 1)[1].split("\n", 1)[0]
        secrets += [jwt, seed, seed[2:14]]
    yield OperatorServer(server, good, revoked, expired, secrets)
    server.kill()


def _no_secret(srv: OperatorServer, *texts: str) -> None:
    for text in texts:
        for secret in srv.secrets:
            assert secret not in text


def test_creds_connect_and_publish_on_an_operator_mode_server(cs: CsRunner, operator_server: OperatorServer) -> None:
    env = operator_server.env(operator_server.good)
    res = cs("nats", "setup", env=env)
    assert res.returncode == 0, res.stderr
    check = cs("nats", "check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    res = cs("events", "publish", "job.destroyed", "--data", DESTROYED, env=env)
    assert res.returncode == 0, res.stderr
    assert "delivered job.destroyed -> stream CLOUDSTATION seq 1" in res.stdout
    tail = cs("events", "tail", "--no-follow", "--json", env=env)
    assert tail.returncode == 0, tail.stderr
    assert [json.loads(line)["subject"] for line in tail.stdout.splitlines()] == ["job.destroyed"]
    _no_secret(operator_server, res.stdout + res.stderr, check.stdout + check.stderr)


@pytest.mark.parametrize("user", ["revoked", "expired"])
def test_a_revoked_or_expired_user_is_refused_with_77_and_the_event_is_kept(
    cs: CsRunner, operator_server: OperatorServer, user: str
) -> None:
    assert cs("nats", "setup", env=operator_server.env(operator_server.good)).returncode == 0
    env = operator_server.env(getattr(operator_server, user)) | {"CS_DELIVERY_TIMEOUT": "20s"}
    res = cs("events", "publish", "job.destroyed", "--data", DESTROYED, env=env, timeout=60)
    assert res.returncode == 77, res.stderr
    assert "Traceback" not in res.stderr
    assert "refused" in res.stderr.strip().splitlines()[-1]
    pending = json.loads(cs("events", "pending", "--json").stdout)
    assert [(p["subject"], p["state"]) for p in pending] == [("job.destroyed", "waiting")]
    # the server refused this user for the reason under test (not for a broken JWT)
    server_log = (operator_server.server.workdir / "n1.log").read_text().lower()
    assert ("user authentication revoked" if user == "revoked" else "expired") in server_log, server_log[-2000:]
    check = cs("nats", "check", env=env)
    assert check.returncode == 77, check.stdout + check.stderr
    _no_secret(operator_server, res.stdout + res.stderr, check.stdout + check.stderr)
    # the valid user delivers what the refused one kept
    res = cs("events", "flush", env=operator_server.env(operator_server.good))
    assert res.returncode == 0, res.stderr
    assert "delivered 1 event(s)" in res.stdout

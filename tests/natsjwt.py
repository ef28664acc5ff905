"""Operator-mode NATS for tests: operator, account and user JWTs signed with real NKeys, and ``.creds`` files.

nats-py has no JWT encoder, so this module writes the (small) NATS JWT v2 format itself: a header
``{"typ": "JWT", "alg": "ed25519-nkey"}``, the claims, and an Ed25519 signature by the issuer's NKey,
each part base64url without padding. The server verifies every signature and the chain
operator → account → user; a user's ``exp`` and the account's ``revocations`` are enforced by it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nkeys

_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Key:
    """An NKey pair of one kind (operator, account or user)."""

    prefix: int
    seed: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.seed = nkeys.encode_seed(os.urandom(32), self.prefix)

    @property
    def public(self) -> str:
        kp = nkeys.from_seed(self.seed)
        public: bytes = kp.public_key
        return public.decode()

    def sign(self, data: bytes) -> bytes:
        kp = nkeys.from_seed(self.seed)
        signature: bytes = kp.sign(data)
        return signature


def encode_jwt(claims: dict[str, Any], issuer: Key) -> str:
    """A signed NATS JWT: ``jti`` is the SHA-512/256 of the claims (as the Go library computes it)."""
    body = dict(claims)
    body.setdefault("iat", int(time.time()))
    body["iss"] = issuer.public
    body["jti"] = ""
    digest = hashlib.new("sha512_256", json.dumps(body, separators=(",", ":")).encode()).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    signing_input = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(body, separators=(',', ':')).encode())}"
    return f"{signing_input}.{_b64(issuer.sign(signing_input.encode()))}"


_UNLIMITED = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
    "mem_storage": -1,
    "disk_storage": -1,
    "streams": -1,
    "consumer": -1,
}


@dataclass
class Operator:
    """An operator with one account; mints users and writes the server's configuration."""

    operator: Key = field(default_factory=lambda: Key(nkeys.PREFIX_BYTE_OPERATOR))
    account: Key = field(default_factory=lambda: Key(nkeys.PREFIX_BYTE_ACCOUNT))
    system: Key = field(default_factory=lambda: Key(nkeys.PREFIX_BYTE_ACCOUNT))  # JetStream needs one
    revoked: dict[str, int] = field(default_factory=dict)

    def operator_jwt(self) -> str:
        nats = {"type": "operator", "version": 2, "system_account": self.system.public}
        claims = {"sub": self.operator.public, "name": "cs-test-operator", "nats": nats}
        return encode_jwt(claims, self.operator)

    def system_jwt(self) -> str:
        claims = {"sub": self.system.public, "name": "SYS", "nats": {"type": "account", "version": 2}}
        return encode_jwt(claims, self.operator)

    def account_jwt(self) -> str:
        nats: dict[str, Any] = {"type": "account", "version": 2, "limits": _UNLIMITED}
        if self.revoked:
            nats["revocations"] = dict(self.revoked)
        claims = {"sub": self.account.public, "name": "cs-test-account", "nats": nats}
        return encode_jwt(claims, self.operator)

    def server_config(self) -> str:
        """nats-server configuration: operator mode, the account preloaded in a MEMORY resolver."""
        return (
            f"operator: {self.operator_jwt()}\n"
            f"system_account: {self.system.public}\n"
            "resolver: MEMORY\n"
            f"resolver_preload: {{\n  {self.account.public}: {self.account_jwt()}\n"
            f"  {self.system.public}: {self.system_jwt()}\n}}\n"
        )

    def user_creds(self, path: Path, *, expires_in: float | None = None, issued_at: int | None = None) -> Key:
        """Write a ``.creds`` file for a new user of the account; returns the user's key."""
        user = Key(nkeys.PREFIX_BYTE_USER)
        claims: dict[str, Any] = {
            "sub": user.public,
            "name": "cs-test-user",
            "nats": {"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1},
        }
        if issued_at is not None:
            claims["iat"] = issued_at
        if expires_in is not None:
            claims["exp"] = int(time.time() + expires_in)
        jwt = encode_jwt(claims, self.account)
        path.write_text(
            "-----BEGIN NATS USER JWT-----\n"
            f"{jwt}\n"
            "------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{user.seed.decode()}\n"
            "------END USER NKEY SEED------\n"
        )
        path.chmod(0o600)
        return user

    def revoke(self, user: Key) -> None:
        """Revoke every JWT of ``user`` issued until now (the server must be restarted with the new config)."""
        self.revoked[user.public] = int(time.time()) + 1

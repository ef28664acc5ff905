"""The digest a registry holds for a pushed tag: ``HEAD /v2/<name>/manifests/<tag>`` (OCI distribution API).

``docker push`` prints the digest only in prose; podman writes it to ``--digestfile``. For the docker
CLI the registry itself is asked: a ``HEAD`` of the manifest with the ``Accept`` headers of every
manifest and index media type, answered with ``Docker-Content-Digest`` (when a registry leaves that
header out, the manifest is fetched and hashed: the digest is the sha256 of its bytes).

Authentication as registries ask for it (``WWW-Authenticate``): ``Basic`` (htpasswd) with the push
credentials, or ``Bearer`` (a token from the realm, with the credentials when there are any). HTTPS
first; plain HTTP only for a loopback host or a registry configured ``insecure`` (as Docker treats
``127.0.0.0/8`` by default). Errors are :class:`DigestError` with a one-line message that never
contains the credentials.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

TIMEOUT = 15.0
DOCKER_HUB = "registry-1.docker.io"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class DigestError(Exception):
    """The registry's digest could not be read; the message is one line and secret-free."""


@dataclass(frozen=True)
class Reference:
    """A pushed image reference split for the registry API."""

    host: str  # "localhost:5000", "registry-1.docker.io"
    name: str  # "team/web" ("library/web" on Docker Hub)
    tag: str

    @property
    def loopback(self) -> bool:
        hostname = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host[1:].split("]")[0]
        return hostname in ("localhost", "::1") or hostname.startswith("127.")


def split_reference(ref: str) -> Reference:
    """``[host/]name:tag`` → :class:`Reference` (Docker Hub for names without a registry host)."""
    rest, _, tag = ref.rpartition(":")
    if not rest or "/" in tag:
        rest, tag = ref, "latest"
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, name = first, remainder
    else:
        host, name = DOCKER_HUB, rest
    if host in ("docker.io", "index.docker.io"):
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    return Reference(host, name, tag)


def manifest_digest(ref: str, *, username: str = "", password: str = "", insecure: bool = False) -> str:
    """The ``sha256:…`` digest the registry holds for ``ref``'s tag (blocking; run it in a thread)."""
    target = split_reference(ref)
    schemes = ["https", "http"] if (insecure or target.loopback) else ["https"]
    failures: list[str] = []
    for scheme in schemes:
        url = f"{scheme}://{target.host}/v2/{target.name}/manifests/{urllib.parse.quote(target.tag)}"
        try:
            return _digest_at(url, target, username, password)
        except _Unreachable as exc:
            failures.append(f"{scheme}: {exc}")
    raise DigestError(f"registry {target.host} unreachable ({'; '.join(failures)})")


class _Unreachable(Exception):
    """No HTTP answer at all over this scheme (try the next)."""


def _digest_at(url: str, target: Reference, username: str, password: str) -> str:
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    status, answer, _ = _request("HEAD", url, headers)
    if status == 401:
        headers["Authorization"] = _authorization(answer, target, username, password)
        status, answer, _ = _request("HEAD", url, headers)
    if status == 401:
        raise DigestError(f"registry {target.host} refused the credentials for {target.name} (401)")
    if status == 404:
        raise DigestError(f"registry {target.host} has no manifest {target.name}:{target.tag} (404)")
    if status != 200:
        raise DigestError(f"registry {target.host} answered {status} for {target.name}:{target.tag}")
    digest = (answer.get("Docker-Content-Digest") or "").strip()
    if _DIGEST.fullmatch(digest):
        return digest
    status, answer, body = _request("GET", url, headers)
    if status != 200:
        raise DigestError(f"registry {target.host} answered {status} to GET {target.name}:{target.tag}")
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _authorization(challenge_headers: Message, target: Reference, username: str, password: str) -> str:
    """The ``Authorization`` header a 401's ``WWW-Authenticate`` asks for."""
    challenge = challenge_headers.get("WWW-Authenticate") or ""
    scheme, _, params_text = challenge.strip().partition(" ")
    basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode() if username else ""
    if scheme.lower() == "basic":
        if not basic:
            raise DigestError(f"registry {target.host} asks for credentials and none are configured")
        return basic
    if scheme.lower() != "bearer":
        raise DigestError(f"registry {target.host} asks for unsupported authentication {scheme or '(none)'!r}")
    params = dict(_CHALLENGE_PARAM.findall(params_text))
    realm = params.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise DigestError(f"registry {target.host} sent a Bearer challenge without a usable realm")
    params.setdefault("scope", f"repository:{target.name}:pull")
    token_url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(params)
    try:
        status, _, body = _request("GET", token_url, {"Authorization": basic} if basic else {})
    except _Unreachable as exc:
        raise DigestError(f"token service of {target.host} unreachable ({exc})") from None
    if status != 200:
        raise DigestError(f"token service of {target.host} answered {status}")
    try:
        doc = json.loads(body)
        token = str(doc.get("token") or doc.get("access_token") or "")
    except (ValueError, AttributeError):
        token = ""
    if not token:
        raise DigestError(f"token service of {target.host} returned no token")
    return f"Bearer {token}"


def _request(method: str, url: str, headers: dict[str, str]) -> tuple[int, Message, bytes]:
    """One request, no redirects followed with credentials; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, method=method, headers=headers)
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=ssl.create_default_context()))
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return response.status, response.headers, response.read() if method != "HEAD" else b""
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, b""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Unreachable(str(reason).splitlines()[0] if str(reason) else type(exc).__name__) from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answered as they are (a registry's manifest HEAD does not redirect)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None

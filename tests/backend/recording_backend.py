"""A recording stand-in for the CloudStation backend: stdlib HTTP server on 127.0.0.1 in a thread.

It records method, path, query, headers and JSON body of every request and answers from a script: a
list of ``(status, body)`` per path, consumed in order (the last one repeats); unknown paths get 404.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.localhttp import serving

Answer = tuple[int, Any]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class RecordingBackend:
    base_url: str
    script: dict[str, list[Answer]]
    requests: list[Recorded] = field(default_factory=list)

    def on(self, path: str, *answers: Answer) -> None:
        self.script[path] = list(answers)


@contextmanager
def recording_backend(script: Mapping[str, Sequence[Answer]] | None = None) -> Iterator[RecordingBackend]:
    lock = threading.Lock()
    state = RecordingBackend("", {path: list(answers) for path, answers in (script or {}).items()})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._answer()

        def do_PUT(self) -> None:
            self._answer()

        def _answer(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else None
            with lock:
                state.requests.append(
                    Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                )
                answers = state.script.get(parts.path)
                status, payload = (answers.pop(0) if len(answers) > 1 else answers[0]) if answers else (404, None)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serving(Handler) as url:
        state.base_url = url
        yield state


def closed_port_url() -> str:
    """The URL of a 127.0.0.1 port nothing listens on (a backend that is down)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"

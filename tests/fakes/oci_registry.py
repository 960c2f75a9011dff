"""A fake container registry on loopback speaking the OCI distribution API's read side.

`/v2/<name>/manifests/<reference>` (HEAD and GET) answers with the manifest stored for
`<name>:<reference>` and its `Docker-Content-Digest`, only with a Bearer token: without
one it answers 401 with a `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
challenge whose realm (`/token`) hands out an anonymous token, as Docker Hub and ghcr.io
do. `lying` names answer HEAD without a digest and GET with a wrong one; every request is
recorded (method, path, Accept). Standard library only; `stop()` tears it down.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.fakes.background import BackgroundServer

TOKEN = "fake-registry-token"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def manifest_for(name: str, tag: str) -> bytes:
    """A small image index body, distinct per image."""
    return json.dumps(
        {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [], "for": f"{name}:{tag}"}
    ).encode()


def digest_of(body: bytes) -> str:
    """The content digest of a body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass
class _State:
    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    lying: set[str] = field(default_factory=set)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read `FakeRegistry.seen`."""

    def _answer(self, status: int, headers: dict[str, str], body: bytes, *, send: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send:
            self.wfile.write(body)

    def _handle(self, send: bool) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        with state.lock:
            state.seen.append((self.command, url.path, self.headers.get("Accept", "")))
        if url.path == "/token":
            scope = parse_qs(url.query).get("scope", [""])[0]
            body = json.dumps({"token": TOKEN, "scope": scope}).encode()
            self._answer(200, {"Content-Type": "application/json"}, body, send=send)
            return
        if not url.path.startswith("/v2/") or "/manifests/" not in url.path:
            self._answer(404, {}, b"{}", send=send)
            return
        name, _, reference = url.path[len("/v2/") :].partition("/manifests/")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            host, port = self.server.server_address[:2]
            challenge = (
                f'Bearer realm="http://{host}:{port}/token",service="fake",'
                f'scope="repository:{name}:pull"'
            )
            self._answer(401, {"WWW-Authenticate": challenge}, b"{}", send=send)
            return
        body = state.manifests.get((name, reference))
        if body is None:
            self._answer(404, {"Content-Type": "application/json"}, b"{}", send=send)
            return
        headers = {"Content-Type": INDEX_TYPE}
        if name in state.lying:
            if self.command == "GET":
                headers["Docker-Content-Digest"] = digest_of(body + b"tampered")
        else:
            headers["Docker-Content-Digest"] = digest_of(body)
        self._answer(200, headers, body, send=send)

    def do_HEAD(self) -> None:
        """Manifest heads (what the tool asks first)."""
        self._handle(send=False)

    def do_GET(self) -> None:
        """Manifests and tokens."""
        self._handle(send=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = _State()


class FakeRegistry(BackgroundServer):
    """The fake registry on 127.0.0.1 and a free port; a context manager."""

    def __init__(self) -> None:
        self._server = _Server()
        super().__init__(self._server)

    @property
    def url(self) -> str:
        """Base URL of its API."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, name: str, tag: str, *, lying: bool = False) -> str:
        """Serve an image; returns the digest it serves for `name:tag`."""
        body = manifest_for(name, tag)
        with self._server.state.lock:
            self._server.state.manifests[(name, tag)] = body
            if lying:
                self._server.state.lying.add(name)
        return digest_of(body)

    @property
    def seen(self) -> list[tuple[str, str, str]]:
        """(method, path, Accept) of every request so far."""
        with self._server.state.lock:
            return list(self._server.state.seen)

"""Fakes for the Qdrant snapshot job on loopback: Qdrant's snapshot API and an S3 bucket.

`FakeQdrant` (HTTP) answers only requests whose `api-key` header is its key: `GET
/collections` lists `collections`, `POST /collections/<c>/snapshots` creates a snapshot
(its name names the node, told by the `Host` the job used), `GET .../snapshots/<name>`
serves its bytes and `DELETE` removes it. `FakeS3` (HTTPS, a certificate from a
`TestPki`) records each PUT (path, `Authorization`, body) and answers 200. Both record
everything; standard library only; both stop on exit.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.background import BackgroundServer


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    snapshots: dict[str, bytes] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    puts: list[tuple[str, str, bytes]] = field(default_factory=list)


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the recorded state."""

    def _send(self, status: int, document: Any) -> None:
        # Compact, as Qdrant writes it (the job greps `"name":"..."`).
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _QdrantHandler(_Base):
    def _handle(self) -> None:
        state = self.server.state
        host = self.headers.get("Host", "")
        path = urlsplit(self.path).path
        with state.lock:
            state.seen.append((self.command, host, path))
        if self.headers.get("api-key") != self.server.key:
            self._send(401, {"status": {"error": "Must provide an API key"}})
            return
        parts = path.strip("/").split("/")
        if self.command == "GET" and parts == ["collections"]:
            names = [{"name": name} for name in self.server.collections]
            self._send(200, {"result": {"collections": names}})
        elif self.command == "POST" and len(parts) == 3 and parts[2] == "snapshots":
            name = f"{parts[1]}-{host.split('.')[0]}.snapshot"
            with state.lock:
                state.snapshots[name] = f"bytes of {name}".encode()
            self._send(200, {"result": {"name": name, "size": 1}})
        elif len(parts) == 4 and parts[2] == "snapshots" and parts[3] in state.snapshots:
            if self.command == "DELETE":
                with state.lock:
                    state.deleted.append(parts[3])
                self._send(200, {"result": True})
                return
            body = state.snapshots[parts[3]]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._send(404, {"status": {"error": "not found"}})

    def do_GET(self) -> None:
        """Collections and snapshot downloads."""
        self._handle()

    def do_POST(self) -> None:
        """Snapshot creation."""
        self._handle()

    def do_DELETE(self) -> None:
        """Snapshot removal."""
        self._handle()


class _S3Handler(_Base):
    def do_PUT(self) -> None:
        """An object upload: recorded with its signature header."""
        body = self._body()
        with self.server.state.lock:
            self.server.state.puts.append(
                (urlsplit(self.path).path, self.headers.get("Authorization", ""), body)
            )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, handler: type[_Base], *, key: str = "", collections: tuple[str, ...] = ()
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.state = _State()
        self.key = key
        self.collections = collections


class _Running(BackgroundServer):
    def __init__(self, server: _Server) -> None:
        self._server = server
        super().__init__(server)

    @property
    def port(self) -> int:
        """The port it listens on (127.0.0.1)."""
        return int(self._server.server_address[1])

    @property
    def state(self) -> _State:
        """What it recorded (read under `state.lock` while it runs)."""
        return self._server.state


class FakeQdrant(_Running):
    """Qdrant's snapshot API, guarded by `key`, holding `collections`."""

    def __init__(self, key: str, collections: tuple[str, ...]) -> None:
        super().__init__(_Server(_QdrantHandler, key=key, collections=collections))


class FakeS3(_Running):
    """An S3 endpoint over TLS with the given certificate."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        server = _Server(_S3Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        super().__init__(server)

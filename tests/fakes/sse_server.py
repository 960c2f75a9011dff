"""Shared plumbing of the fake model APIs: a threaded HTTP/1.1 server on loopback.

The fakes speak HTTP/1.1 with chunked transfer encoding for streams, as uvicorn (vLLM)
and Anthropic's API do, so a connection cut in the middle of a stream is visible to the
client as a truncated chunked body, not as a normal end of response. Each fake keeps its
port across `stop()` / `start()`, so a test can take a backend down and bring it back at
the same address. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

HANG_LIMIT_SECONDS = 60.0
"""A hanging request is released after this long at most, or at `stop()`."""


@dataclass(frozen=True)
class Seen:
    """One request a fake received."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    at: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], fake: FakeApi) -> None:
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.fake.mode == "down":
            # Reset at once (SO_LINGER 0 sends RST), as a crashed backend's port does.
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close()
            return
        # Each SSE event leaves in its own segment as soon as it is written (no Nagle).
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut kept-alive connections too: a stopped server answers nothing any more."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gives up (timeout, failover) resets the socket; that is expected.
        pass


class FakeHandler(BaseHTTPRequestHandler):
    """Request handler base: JSON and chunked SSE helpers; subclasses route."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def fake(self) -> FakeApi:
        return self.server.fake

    def read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: dict[str, Any] = json.loads(raw) if raw else {}
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake.record(Seen(self.path, headers, body, time.monotonic()))
        return body

    def send_json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut_connection(self) -> None:
        """Drop the connection mid-body, as a crashed or killed server does."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def hang(self) -> None:
        """Accept the request and answer nothing until released."""
        self.fake.release.wait(HANG_LIMIT_SECONDS)
        self.close_connection = True


class FakeApi:
    """Start/stop, recording and knobs shared by the fakes; `handler` answers requests.

    Modes: `normal`; `down` (every new connection is reset before a byte is read, as
    a crashed backend's; `stop()` instead refuses connections); `hang` (accept, never
    answer); `break-after-first-event` (a stream sends one event then the connection is
    cut); `error` (HTTP 500). `first_token_delay`
    and `token_interval` (seconds) shape the timing of answers.
    """

    handler: type[FakeHandler]

    def __init__(self, *, reply: str = "hello from the fake", tokens: int = 5) -> None:
        self.reply = reply
        self.tokens = tokens
        self.mode = "normal"
        self.first_token_delay = 0.0
        self.token_interval = 0.0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The loopback port; kept across restarts."""
        assert self._port, "start the fake first"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def seen(self, path_prefix: str = "") -> list[Seen]:
        """Requests received so far, optionally only those under a path."""
        with self._lock:
            return [s for s in self._seen if s.path.startswith(path_prefix)]

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def words(self) -> list[str]:
        """The reply cut into at most `tokens` pieces that join back into `reply`."""
        parts = self.reply.split(" ")
        per = max(1, -(-len(parts) // self.tokens))
        pieces = [" ".join(parts[i : i + per]) for i in range(0, len(parts), per)]
        return [pieces[0], *(" " + piece for piece in pieces[1:])]

    def start(self) -> Self:
        """Listen on 127.0.0.1 (a free port the first time, the same port after)."""
        if self._server is not None:
            return self
        self.release.clear()
        self._server = _Server(self._port, self.handler, self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release hanging requests; the port stays reserved by number."""
        server, self._server = self._server, None
        self.release.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

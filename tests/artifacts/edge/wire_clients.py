"""Clients that send exactly the bytes a test asks for, over HTTP/1.0, HTTP/1.1 and HTTP/2.

An attacker's request target is sent verbatim (`//`, `..`, `%2e`, `;`, absolute-URI),
which the usual HTTP clients normalise or refuse:
- HTTP/1.0: one TLS connection per request over a raw socket, no `Host` header unless the
  request carries one;
- HTTP/1.1: `http.client` on one keep-alive connection, the target passed untouched and
  `Host` added by the client;
- HTTP/2: one `curl --http2` process for a whole batch (`--request-target`,
  `--path-as-is`), so the batch shares one connection; curl is a system tool
  (scripts/install-system-tools.sh).
Every call is bounded by a socket timeout (and the curl batch by a process timeout).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

VERSIONS = ("HTTP/1.0", "HTTP/1.1", "HTTP/2")
TIMEOUT_S = 10


@dataclass(frozen=True)
class Wire:
    """One request as it goes on the wire."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    """One response: status, headers (names lower-cased, repeats joined) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def error_code(self) -> str | None:
        """`error.code` of a JSON error body, None when the body is no such JSON."""
        try:
            document = json.loads(self.body)
        except ValueError:
            return None
        error = document.get("error") if isinstance(document, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, str) else None


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


class EdgeClient:
    """Sends `Wire` requests to an edge on 127.0.0.1 that presents a certificate for `name`."""

    def __init__(self, port: int, name: str, ca_pem: bytes) -> None:
        self.port = port
        self.name = name
        self.ca_pem = ca_pem
        self._context = ssl.create_default_context(cadata=ca_pem.decode())
        self._kept: http.client.HTTPSConnection | None = None

    def send(self, version: str, requests: Sequence[Wire]) -> list[Answer]:
        """Send `requests` in order over `version`; one answer each."""
        if version == "HTTP/1.0":
            return [self._http10(request) for request in requests]
        if version == "HTTP/1.1":
            return [self._http11(request) for request in requests]
        if version == "HTTP/2":
            return self._http2(requests)
        raise ValueError(f"unknown HTTP version {version}")

    def close(self) -> None:
        """Close the kept HTTP/1.1 connection."""
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def _http10(self, request: Wire) -> Answer:
        lines = [f"{request.method} {request.target} HTTP/1.0"]
        lines += [f"{name}: {value}" for name, value in request.headers]
        if request.body:
            lines.append(f"Content-Length: {len(request.body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT_S) as plain,
            self._context.wrap_socket(plain, server_hostname=self.name) as tls,
        ):
            tls.sendall(raw)
            response = http.client.HTTPResponse(tls, method=request.method)
            try:
                response.begin()
                return Answer(response.status, _headers(response.getheaders()), response.read())
            finally:
                response.close()

    def _http11(self, request: Wire) -> Answer:
        for attempt in (1, 2):
            if self._kept is None:
                self._kept = http.client.HTTPSConnection(
                    "127.0.0.1", self.port, context=self._context, timeout=TIMEOUT_S
                )
                self._kept.connect()
            conn = self._kept
            try:
                conn.putrequest(request.method, request.target, skip_accept_encoding=True)
                for name, value in request.headers:
                    conn.putheader(name, value)
                if request.body:
                    conn.putheader("Content-Length", str(len(request.body)))
                conn.endheaders(request.body or None)
                response = conn.getresponse()
                answer = Answer(response.status, _headers(response.getheaders()), response.read())
            except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLEOFError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return answer
        raise AssertionError("unreachable")

    def _http2(self, requests: Sequence[Wire]) -> list[Answer]:
        curl = shutil.which("curl")
        if curl is None:
            pytest.skip("curl is not installed (run scripts/install-system-tools.sh)")
        with tempfile.TemporaryDirectory(prefix="h2-") as tmp:
            root = Path(tmp)
            (root / "ca.pem").write_bytes(self.ca_pem)
            blocks = []
            for index, request in enumerate(requests):
                (root / f"body-{index}").write_bytes(request.body)
                options = [
                    f'url = "https://{self.name}:{self.port}/"',
                    f'resolve = "{self.name}:{self.port}:127.0.0.1"',
                    f'cacert = "{root / "ca.pem"}"',
                    "http2",
                    "path-as-is",
                    "silent",
                    f'request = "{request.method}"',
                    f'request-target = "{_curl_quote(request.target)}"',
                    f'output = "{root / f"out-{index}"}"',
                    f'dump-header = "{root / f"head-{index}"}"',
                    'write-out = "%{http_code}\\n"',
                    f"max-time = {TIMEOUT_S}",
                    # curl adds these itself; an empty value removes them.
                    'header = "User-Agent:"',
                    'header = "Accept:"',
                    *(f'header = "{_curl_quote(f"{n}: {v}")}"' for n, v in request.headers),
                ]
                if request.body:
                    options.append(f'data-binary = "@{root / f"body-{index}"}"')
                blocks.append("\n".join(options))
            (root / "config").write_text("\nnext\n".join(blocks) + "\n")
            done = subprocess.run(
                [curl, "--config", str(root / "config")],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S + 5 * len(requests),
                check=False,
            )
            statuses = done.stdout.split()
            assert len(statuses) == len(requests), (done.returncode, done.stderr)
            answers = []
            for index, status in enumerate(statuses):
                head = root / f"head-{index}"
                out = root / f"out-{index}"
                answers.append(
                    Answer(
                        int(status),
                        _curl_headers(head.read_text() if head.exists() else ""),
                        out.read_bytes() if out.exists() else b"",
                    )
                )
            return answers


def _curl_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _curl_headers(dump: str) -> dict[str, str]:
    pairs = []
    for line in dump.splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return _headers(pairs)

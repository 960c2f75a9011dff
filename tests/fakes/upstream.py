"""A fake HTTP(S) upstream on loopback, and a throwaway test PKI to serve it with TLS.

`FakeUpstream` records every request it gets (method, path, headers, body) and answers:
- a POST whose JSON body holds `"fake_stream": {"events": N, "interval_ms": M, "id": X}`
  (on any path, so on the edge's allowed routes too): a server-sent event stream of N
  events, M ms apart, recording when each event left (`stream_sent_at(X)`,
  `time.monotonic()`); it also sends `X-Accel-Buffering: yes`, which a proxy in front must
  not obey;
- anything else: 200 with a small JSON body naming the path.
Every answer carries `INTERNAL_HEADERS`, the kind of internal headers LiteLLM adds (its
backend URL, the key's spend, the provider's headers), which a proxy in front must hide.

`TestPki` is a CA (EC P-256, made with `cryptography`) that issues server certificates.
Standard library plus `cryptography` only; every server is torn down by `stop()`.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fakes.background import BackgroundServer

INTERNAL_HEADERS = {
    "x-litellm-model-api-base": "http://10.0.0.12:8000/v1",
    "x-litellm-key-spend": "12.5",
    "x-litellm-call-id": "call-0123",
    "x-litellm-key-remaining-requests-qwen3-8b": "99",
    "llm_provider-anthropic-organization-id": "org-internal",
    "x-ratelimit-remaining-requests": "4999",
}
"""Response headers of the kind LiteLLM 1.83.14 adds (proxy/common_request_processing.py
`get_custom_headers`, litellm_core_utils/llm_response_utils/get_headers.py)."""

# Fixed validity window around a fixed date would expire; certificates are made per run.
_VALIDITY = datetime.timedelta(days=2)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestPki:
    """A throwaway CA that issues server certificates for loopback tests."""

    __test__ = False  # not a pytest test class

    def __init__(self, common_name: str = "llm-platform test CA") -> None:
        now = datetime.datetime.now(datetime.UTC)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self._name = name
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, dns_names: list[str], ip_addresses: tuple[str, ...] = ()
    ) -> tuple[bytes, bytes]:
        """A server certificate and its key (PEM) for these names and addresses."""
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    def write_server_files(
        self, directory: Path, stem: str, dns_names: list[str]
    ) -> tuple[Path, Path]:
        """Issue a certificate for `dns_names` (and 127.0.0.1) into `<stem>.crt`/`<stem>.key`."""
        cert, key = self.issue(dns_names, ("127.0.0.1",))
        cert_path = directory / f"{stem}.crt"
        key_path = directory / f"{stem}.key"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
        return cert_path, key_path


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    received_at: float


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RecordedRequest] = field(default_factory=list)
    streams: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def stream_request_body(events: int, interval_ms: int, stream_id: str) -> bytes:
    """A chat-completions-shaped request body that makes the fake stream (see above)."""
    document = {
        "model": "fake",
        "stream": True,
        "messages": [{"role": "user", "content": "stream"}],
        "fake_stream": {"events": events, "interval_ms": interval_ms, "id": stream_id},
    }
    return json.dumps(document).encode()


def _stream_request(body: bytes) -> dict[str, object] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    stream = document.get("fake_stream") if isinstance(document, dict) else None
    return stream if isinstance(stream, dict) else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 10

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `FakeUpstream.requests` instead."""

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        with self.server.state.lock:
            self.server.state.requests.append(
                RecordedRequest(self.command, self.path, headers, body, time.monotonic())
            )
        return body

    def _handle(self) -> None:
        body = self._record()
        url = urlsplit(self.path)
        stream = _stream_request(body)
        if stream is not None:
            self._stream(stream)
            return
        payload = json.dumps({"ok": True, "path": url.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self._internal_headers()
        self.end_headers()
        self.wfile.write(payload)

    def _internal_headers(self) -> None:
        for name, value in INTERNAL_HEADERS.items():
            self.send_header(name, value)

    def _stream(self, request: dict[str, object]) -> None:
        events = min(int(str(request.get("events", 20))), 1000)
        interval = min(int(str(request.get("interval_ms", 20))), 1000) / 1000
        stream_id = str(request.get("id", "stream"))
        self.send_response(200)
        self._internal_headers()
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Accel-Buffering", "yes")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        sent: list[float] = []
        with self.server.state.lock:
            self.server.state.streams[stream_id] = sent
        for index in range(events):
            if index:
                time.sleep(interval)
            data = f"data: {json.dumps({'index': index})}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            with self.server.state.lock:
                sent.append(time.monotonic())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        """Any path: see the module docstring."""
        self._handle()

    def do_POST(self) -> None:
        """Any path: see the module docstring."""
        self._handle()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext | None) -> None:
        super().__init__(address, _Handler)
        self.state = _State()
        self.context = context

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        if self.context is not None:
            # The handshake happens lazily in the handler thread, not in the accept loop.
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: object, client_address: object) -> None:
        """Failed handshakes (a proxy refusing our certificate) are recorded, not printed."""
        with self.state.lock:
            self.state.errors.append(repr(client_address))


class FakeUpstream(BackgroundServer):
    """A recording HTTP(S) server on 127.0.0.1 and a free port; a context manager."""

    def __init__(self, *, cert_file: Path | None = None, key_file: Path | None = None) -> None:
        context = None
        if cert_file is not None and key_file is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert_file, key_file)
        self._server = _Server(("127.0.0.1", 0), context)
        super().__init__(self._server)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far."""
        with self._server.state.lock:
            return list(self._server.state.requests)

    @property
    def handler_errors(self) -> list[str]:
        """Connections whose handling failed (e.g. the client aborted the TLS handshake)."""
        with self._server.state.lock:
            return list(self._server.state.errors)

    def stream_sent_at(self, stream_id: str) -> list[float]:
        """`time.monotonic()` at which each event of a stream was written and flushed."""
        with self._server.state.lock:
            return list(self._server.state.streams.get(stream_id, []))

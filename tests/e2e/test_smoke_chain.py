"""`tools.smoke` against the whole loopback chain (edge nginx -> LiteLLM -> fake vLLM): the
streaming checks pass on the real path and fail, naming the hop, when a proxy that
buffers whole responses is put in front, when the first token is late, and when a model
does not answer (tests/e2e/chain.py).
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.edge.nginx_conf import ClientLimit
from components.llm_gateway.litellm_config import render_litellm_config
from tests.e2e.chain import Chain, litellm_chain
from tests.litellm_proxy import client_requests, litellm_available
from tools import smoke

pytestmark = [pytest.mark.e2e, pytest.mark.live]

_missing = litellm_available()
if _missing is not None:
    pytest.skip(_missing, allow_module_level=True)

KEY = "sk-e2e-chain-SmokeSmokeSmoke0123456789"
MODEL = "qwen3-8b"
EVENTS = 16
INTERVAL_S = 0.02


@pytest.fixture(scope="module")
def running_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Chain, Path]]:
    root = tmp_path_factory.mktemp("smoke-chain")
    clients = (ClientLimit(name="smoke", requests_per_second=100, burst=100),)
    with litellm_chain(root, clients, {"smoke": KEY}) as chain:
        ca = root / "ca.pem"
        ca.write_bytes(chain.pki.ca_pem)
        yield chain, ca


@pytest.fixture
def chain(running_chain: tuple[Chain, Path]) -> Iterator[tuple[Chain, Path]]:
    chain, ca = running_chain
    chain.reset()
    fake = chain.local[MODEL]
    # Enough events, spaced well above the burst gap, to judge streaming.
    fake.reply = " ".join(f"n{i}" for i in range(EVENTS))
    fake.tokens = EVENTS
    fake.token_interval = INTERVAL_S
    try:
        yield chain, ca
    finally:
        chain.reset()


class _BufferingHandler(BaseHTTPRequestHandler):
    """Forwards to the edge and answers only once the whole response is in (a misconfigured
    proxy with response buffering on)."""

    protocol_version = "HTTP/1.1"
    server: _BufferingProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
        conn = self.server.chain.edge.connection(timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            passed = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in {"transfer-encoding", "content-length", "connection"}
            ]
        finally:
            conn.close()
        self.send_response(response.status)
        for name, value in passed:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()


class _BufferingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        super().__init__(("127.0.0.1", 0), _BufferingHandler)


@contextlib.contextmanager
def buffering_proxy(chain: Chain) -> Iterator[int]:
    """A plain-HTTP buffering proxy in front of the edge; yields its port."""
    server = _BufferingProxy(chain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = smoke.main(list(args))
    return code, out.getvalue()


def _edge_url(chain: Chain) -> str:
    return f"https://127.0.0.1:{chain.edge.fixture.https_port}"


def test_every_check_passes_through_the_real_chain(chain: tuple[Chain, Path]) -> None:
    running, ca = chain
    code, out = _run(
        "--endpoint", _edge_url(running), "--key", KEY, "--ca-file", str(ca), "--models", MODEL
    )
    assert code == smoke.EXIT_OK, out
    assert "PASS edge health" in out
    assert "PASS wrong key refused: 401 from the edge" in out
    served = {e["model_name"] for e in render_litellm_config(running.config)["model_list"]}
    assert f"PASS gateway models: {len(served)} models" in out
    assert f"PASS model {MODEL} answers" in out
    assert f"PASS model {MODEL} streaming: " in out
    assert KEY not in out
    assert len(client_requests(running.local[MODEL], "/v1/chat/completions")) == 1


def test_a_buffering_proxy_in_front_is_flagged(chain: tuple[Chain, Path]) -> None:
    running, _ = chain
    with buffering_proxy(running) as port:
        code, out = _run("--endpoint", f"http://127.0.0.1:{port}", "--key", KEY, "--models", MODEL)
    assert code == smoke.EXIT_FAILED, out
    # The edge checks still pass through it: only the stream shape gives it away.
    assert "PASS edge health" in out
    assert "PASS wrong key refused" in out
    assert f"PASS model {MODEL} answers" in out
    assert f"FAIL [buffering hop] model {MODEL} streaming: " in out
    assert "in 1 bursts" in out


def test_a_late_first_token_is_blamed_on_the_model(chain: tuple[Chain, Path]) -> None:
    running, ca = chain
    running.local[MODEL].first_token_delay = 1.0
    code, out = _run(
        "--endpoint",
        _edge_url(running),
        "--key",
        KEY,
        "--ca-file",
        str(ca),
        "--models",
        MODEL,
        "--first-token-seconds",
        "0.5",
    )
    assert code == smoke.EXIT_FAILED, out
    assert f"FAIL [model] model {MODEL} first token: " in out
    assert f"PASS model {MODEL} streaming" in out


def test_a_model_that_does_not_answer_is_named(chain: tuple[Chain, Path]) -> None:
    running, ca = chain
    # The LAN model and its cloud fallback both fail: the gateway has nothing to answer with.
    running.local["llama-3-1-8b"].mode = "error"
    running.openai.mode = "error"
    code, out = _run(
        "--endpoint",
        _edge_url(running),
        "--key",
        KEY,
        "--ca-file",
        str(ca),
        "--models",
        f"{MODEL},llama-3-1-8b",
    )
    assert code == smoke.EXIT_FAILED, out
    assert f"PASS model {MODEL} answers" in out
    assert "FAIL [gateway -> model] model llama-3-1-8b answers: " in out
    assert client_requests(running.local["llama-3-1-8b"], "/v1/chat/completions")

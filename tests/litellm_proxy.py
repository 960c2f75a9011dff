"""The real LiteLLM proxy on loopback, for the live tests and the end-to-end chain.

It runs from `.venv-litellm` (`scripts/setup-litellm-venv.sh`, hash-pinned) on a free
127.0.0.1 port, with the cloud providers pointed at loopback fakes, the price map bundled
in the package and no telemetry. `litellm_proxy` stops it when the block ends, also when
the block fails. `Reply` is one response read whole, with LiteLLM's deployment header and
the server-sent events parsed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.config import PlatformConfig
from components.llm_gateway.litellm_config import (
    OFFLINE_ENV,
    RETRY_BACKOFF_ENV,
    hook_files,
)
from tests.artifacts.edge.nginx_harness import free_port
from tests.fakes.openai_server import is_health_check
from tests.support import ROOT, stop_process

LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
START_LIMIT_SECONDS = 120.0  # ~8 s when idle; far more on a loaded 2-core box


def client_requests(fake: Any, path: str = "/v1/") -> list[Any]:
    """What a fake received from clients, not from the gateway's health checks."""
    return [s for s in fake.seen(path) if not is_health_check(s.body)]


CLOSED_PORT = 9
"""The discard port: nothing listens on it on loopback, so a connection is refused at once."""


def closed_mcp_urls(config: PlatformConfig) -> dict[str, str]:
    """The stack's MCP servers moved to a loopback port nothing listens on: the proxy lists
    their tools at start, and no test's call may leave the machine for them."""
    return {name: f"http://127.0.0.1:{CLOSED_PORT}/mcp" for name in config.llm_gateway.mcp_servers}


def mcp_header_env_names(config_yaml: str) -> list[str]:
    """The variables a proxy config's MCP servers read their secret headers from."""
    servers = (yaml.safe_load(config_yaml) or {}).get("mcp_servers") or {}
    return sorted(
        value.removeprefix("os.environ/")
        for server in servers.values()
        for value in (server.get("static_headers") or {}).values()
        if isinstance(value, str) and value.startswith("os.environ/")
    )


def litellm_available() -> str | None:
    """Why the proxy cannot run here, or None when it can."""
    if not LITELLM.exists():
        return "the LiteLLM venv is absent: run scripts/setup-litellm-venv.sh"
    return None


@dataclass(frozen=True)
class ProxyKeys:
    """The master key and the keys the proxy sends to the cloud fakes."""

    master: str
    anthropic: str
    openai: str


@dataclass(frozen=True)
class CloudBases:
    """Base URLs of the cloud fakes (Anthropic's without `/v1`, OpenAI's with it)."""

    anthropic: str
    openai: str


@dataclass(frozen=True)
class ServerTls:
    """The proxy's server certificate and key, and the CA a client verifies it with."""

    cert: Path
    key: Path
    ca_pem: bytes


@dataclass(frozen=True)
class RunningProxy:
    """Where the proxy listens and logs, and how long it took to become ready."""

    port: int
    log: Path
    start_seconds: float


@dataclass(frozen=True)
class Reply:
    """One response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    first_byte_seconds: float

    @property
    def deployment(self) -> str:
        """Which model entry answered (`model_info.id`), from LiteLLM's response header."""
        return self.headers.get("x-litellm-model-id", "")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def events(self) -> list[str]:
        """The `data:` payloads of a server-sent event stream."""
        return sse_data(self.body.decode())

    def content(self) -> str:
        """The assistant text, from a JSON completion or a stream."""
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            return stream_text(self.events())
        return str(self.json()["choices"][0]["message"]["content"])


def sse_data(text: str) -> list[str]:
    """The `data:` payloads of a server-sent event stream."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def stream_text(events: list[str]) -> str:
    """The assistant text carried by chat-completion stream events."""
    text = ""
    for event in events:
        if event == "[DONE]":
            continue
        for choice in json.loads(event).get("choices", []):
            text += (choice.get("delta") or {}).get("content") or ""
    return text


def read_reply(connection: http.client.HTTPConnection, started: float) -> Reply:
    """Read the response of a request sent on `connection` at `started` (monotonic)."""
    response = connection.getresponse()
    first = time.monotonic() - started
    payload = response.read()
    return Reply(
        response.status,
        {k.lower(): v for k, v in response.getheaders()},
        payload,
        time.monotonic() - started,
        first,
    )


def connect(port: int, *, ca_pem: bytes | None, timeout: float) -> http.client.HTTPConnection:
    """A connection to the proxy: TLS verified against `ca_pem`, or plain HTTP without one."""
    if ca_pem is None:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    context = ssl.create_default_context(cadata=ca_pem.decode())
    context.check_hostname = False
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, tls: ServerTls | None, log: Path
) -> None:
    deadline = time.monotonic() + START_LIMIT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"litellm exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"litellm not ready in {START_LIMIT_SECONDS} s:\n{log.read_text()[-3000:]}"
            )
        connection = connect(port, ca_pem=None if tls is None else tls.ca_pem, timeout=1)
        try:
            connection.request("GET", "/health/readiness")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        time.sleep(0.2)


@contextlib.contextmanager
def litellm_proxy(
    root: Path,
    config_yaml: str,
    *,
    keys: ProxyKeys,
    clouds: CloudBases,
    tls: ServerTls | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[RunningProxy]:
    """The proxy on `config_yaml`, ready to serve, on a free loopback port; `extra_env`
    adds to its environment (e.g. an outbound proxy that records attempts)."""
    root.mkdir(parents=True, exist_ok=True)
    config_file = root / "config.yaml"
    config_file.write_text(config_yaml)
    # The failover hooks next to the config, as the gateway's ConfigMap ships them.
    for file_name, text in hook_files().items():
        (root / file_name).write_text(text)
    port = free_port()
    log = root / "litellm.log"
    env = {
        # Every MCP server's secret header, as the Deployment fills them from its Secret
        # (the proxy refuses to start with one unset).
        **{name: f"test-value-{name.lower()}" for name in mcp_header_env_names(config_yaml)},
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LITELLM_MASTER_KEY": keys.master,
        "ANTHROPIC_API_KEY": keys.anthropic,
        "OPENAI_API_KEY": keys.openai,
        "ANTHROPIC_API_BASE": clouds.anthropic,
        "OPENAI_API_BASE": clouds.openai,
        # Offline as in the cluster (the Deployment sets the same OFFLINE_ENV).
        **OFFLINE_ENV,
        **RETRY_BACKOFF_ENV,
        **(extra_env or {}),
    }
    command = [
        str(LITELLM),
        "--config",
        str(config_file),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
    ]
    if tls is not None:
        command += ["--ssl_certfile_path", str(tls.cert), "--ssl_keyfile_path", str(tls.key)]
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, port, tls, log)
        yield RunningProxy(port=port, log=log, start_seconds=time.monotonic() - started)
    finally:
        stop_process(process)

"""The whole chain on loopback: client -> real nginx (rendered edge config) -> real LiteLLM
proxy (rendered config) -> fake vLLM servers, with a fake Anthropic API as the cloud.

LiteLLM runs from `.venv-litellm` (`scripts/setup-litellm-venv.sh`) with TLS from the
harness's test CA under the ingress name, standing in for Traefik with the internal CA, so
the edge verifies it exactly as in production. There is no database, so the master key is
LiteLLM's only key: the edge's upstream key map sends it for every client, as the edge does
with each client's own gateway key in production. Every process binds 127.0.0.1 on a port
picked at run time and is stopped when the block ends, also when a test fails.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import PlatformConfig, parse_platform_config
from components.edge.nginx_conf import ClientLimit
from components.llm_gateway.litellm_config import RETRY_BACKOFF_ENV, litellm_config_yaml
from tests.artifacts.edge.nginx_harness import INGRESS_NAME, free_port
from tests.e2e.harness import EdgeChain, edge_chain
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.openai_server import OpenAiFake
from tests.fakes.upstream import TestPki

ROOT = Path(__file__).resolve().parents[2]
LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
MASTER_KEY = "sk-e2e-chain-master-7c41d0e2b9"
ANTHROPIC_KEY = "sk-ant-e2e-chain-7c41"
OPENAI_KEY = "sk-openai-e2e-chain-7c41"
START_LIMIT_SECONDS = 120.0  # ~8 s when idle; far more on a loaded 2-core box

# Router timings short enough for failover and cooldown to show within seconds.
FAST_ROUTER: dict[str, float | int] = {
    "num_retries": 1,
    "request_timeout_seconds": 2.0,
    "stream_timeout_seconds": 1.5,
    "allowed_fails": 1,
    "cooldown_seconds": 4,
    "health_check_interval_seconds": 300,
}


def litellm_available() -> str | None:
    """Why the chain cannot run here, or None when it can."""
    if not LITELLM.exists():
        return ".venv-litellm is absent: run scripts/setup-litellm-venv.sh"
    return None


def chain_config(
    *,
    router: Mapping[str, float | int] | None = FAST_ROUTER,
    maintenance: bool = False,
    stack: str = "prod",
) -> PlatformConfig:
    """The stack's config with `router` timings (None: the stack's own); `maintenance`
    switches every GPU class to maintenance, so each local model name is served straight
    by its cloud fallback."""
    from tests.support import stack_values  # test-only helper, imported where it is used

    values = stack_values(stack)
    if router is not None:
        values["llm_gateway"]["router"] = dict(router)
    for model in values["inference"]["models"].values():
        model["first_token_seconds"] = 0.5
    if maintenance:
        for gpu_class in values["cluster"]["gpu_classes"].values():
            gpu_class["maintenance"] = True
    return parse_platform_config(values)


@dataclass(frozen=True)
class Reply:
    """One response through the chain, with LiteLLM's deployment header."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    first_byte_seconds: float

    @property
    def deployment(self) -> str:
        """Which model entry answered (`model_info.id`)."""
        return self.headers.get("x-litellm-model-id", "")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def events(self) -> list[str]:
        """The `data:` payloads of a server-sent event stream."""
        return [
            line[len("data: ") :]
            for line in self.body.decode().splitlines()
            if line.startswith("data: ")
        ]

    def content(self) -> str:
        """The assistant text, from a JSON completion or a stream."""
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            text = ""
            for event in self.events():
                if event == "[DONE]":
                    continue
                for choice in json.loads(event).get("choices", []):
                    text += (choice.get("delta") or {}).get("content") or ""
            return text
        return str(self.json()["choices"][0]["message"]["content"])


@dataclass
class Chain:
    """The running chain: the edge, LiteLLM and the fakes behind it."""

    edge: EdgeChain
    config: PlatformConfig
    local: dict[str, OpenAiFake]
    anthropic: AnthropicFake
    openai: OpenAiFake
    litellm_port: int
    litellm_log: Path
    pki: TestPki

    def fakes(self) -> list[OpenAiFake | AnthropicFake]:
        """Every fake backend."""
        return [*self.local.values(), self.anthropic, self.openai]

    def reset(self) -> None:
        """Every fake up, answering normally and at once, with nothing recorded."""
        for fake in self.fakes():
            fake.mode = "normal"
            fake.first_token_delay = 0.0
            fake.token_interval = 0.0
            if not fake.running:
                fake.start()
            fake.clear()

    def litellm_connection(self, timeout: float = 15) -> http.client.HTTPSConnection:
        """A connection straight to LiteLLM (bypassing the edge)."""
        context = ssl.create_default_context(cadata=self.pki.ca_pem.decode())
        context.check_hostname = False
        return http.client.HTTPSConnection(
            "127.0.0.1", self.litellm_port, context=context, timeout=timeout
        )

    def chat(
        self,
        key: str,
        model: str,
        *,
        stream: bool = False,
        marker: str = "e2e-chain",
        timeout: float = 20,
    ) -> Reply:
        """One chat completion through the edge with a client key."""
        body = json.dumps(
            {"model": model, "stream": stream, "messages": [{"role": "user", "content": marker}]}
        ).encode()
        return self.send(
            "POST",
            "/v1/chat/completions",
            key=key,
            body=body,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        key: str | None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 20,
    ) -> Reply:
        """Any request through the edge, on a new connection."""
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        conn = self.edge.connection(timeout=timeout)
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            first = time.monotonic() - started
            payload = response.read()
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                payload,
                time.monotonic() - started,
                first,
            )
        finally:
            conn.close()


def _wait_ready(process: subprocess.Popen[bytes], port: int, pki: TestPki, log: Path) -> None:
    context = ssl.create_default_context(cadata=pki.ca_pem.decode())
    context.check_hostname = False
    deadline = time.monotonic() + START_LIMIT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"litellm exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"litellm not ready in {START_LIMIT_SECONDS} s:\n{log.read_text()[-2000:]}"
            )
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=1)
        try:
            conn.request("GET", "/health/readiness")
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.2)


@contextlib.contextmanager
def litellm_process(
    root: Path,
    pki: TestPki,
    config: PlatformConfig,
    local: Mapping[str, OpenAiFake],
    anthropic: AnthropicFake,
    openai: OpenAiFake,
) -> Iterator[tuple[int, Path]]:
    """The real LiteLLM proxy on the rendered config, HTTPS on a free loopback port."""
    root.mkdir(parents=True, exist_ok=True)
    cert, key = pki.write_server_files(root, "litellm", [INGRESS_NAME])
    config_file = root / "config.yaml"
    config_file.write_text(
        litellm_config_yaml(
            config,
            api_bases={name: f"{fake.base_url}/v1" for name, fake in local.items()},
            redis=False,
        )
    )
    port = free_port()
    log = root / "litellm.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "OPENAI_API_KEY": OPENAI_KEY,
        "ANTHROPIC_API_BASE": anthropic.base_url,
        "OPENAI_API_BASE": f"{openai.base_url}/v1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        **RETRY_BACKOFF_ENV,
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
        "--ssl_certfile_path",
        str(cert),
        "--ssl_keyfile_path",
        str(key),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, port, pki, log)
        yield port, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def litellm_chain(
    root: Path,
    clients: Sequence[ClientLimit],
    keys: Mapping[str, str],
    *,
    config: PlatformConfig | None = None,
    warm: bool = True,
    **edge_overrides: object,
) -> Iterator[Chain]:
    """Fakes, LiteLLM and the edge, started in order and stopped in reverse.

    `warm` sends one request per model first: LiteLLM loads each provider's code on its
    first call, which would otherwise land in whatever a test measures first.
    """
    config = config or chain_config()
    pki = TestPki()
    local = {name: OpenAiFake(name) for name in sorted(config.inference.models)}
    anthropic = AnthropicFake(api_key=ANTHROPIC_KEY)
    openai = OpenAiFake("cloud-openai")
    fakes: list[OpenAiFake | AnthropicFake] = [*local.values(), anthropic, openai]
    try:
        for fake in fakes:
            fake.start()
        with (
            litellm_process(root / "litellm", pki, config, local, anthropic, openai) as (
                port,
                log,
            ),
            edge_chain(
                root / "edge",
                pki,
                port,
                clients,
                keys,
                upstream_keys={name: MASTER_KEY for name in keys},
                **edge_overrides,
            ) as edge,
        ):
            chain = Chain(edge, config, local, anthropic, openai, port, log, pki)
            if warm:
                key = next(iter(keys.values()))
                for model in [*local, *config.llm_gateway.cloud_models]:
                    reply = chain.chat(key, model, marker="warm-up")
                    if reply.status != 200:
                        raise RuntimeError(f"warm-up of {model}: {reply.status} {reply.body!r}")
                chain.reset()
            yield chain
    finally:
        for fake in fakes:
            fake.stop()

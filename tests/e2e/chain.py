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
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.config import PlatformConfig, parse_platform_config
from components.edge.nginx_conf import ClientLimit
from components.llm_gateway.litellm_config import litellm_config_yaml
from tests.artifacts.edge.nginx_harness import INGRESS_NAME
from tests.e2e.harness import EdgeChain, edge_chain
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.openai_server import OpenAiFake
from tests.fakes.upstream import TestPki
from tests.litellm_proxy import (
    CloudBases,
    ProxyKeys,
    Reply,
    RunningProxy,
    ServerTls,
    closed_mcp_urls,
    connect,
    litellm_proxy,
    read_reply,
)

MASTER_KEY = "sk-e2e-chain-master-7c41d0e2b9"
ANTHROPIC_KEY = "sk-ant-e2e-chain-7c41"
OPENAI_KEY = "sk-openai-e2e-chain-7c41"
KEYS = ProxyKeys(master=MASTER_KEY, anthropic=ANTHROPIC_KEY, openai=OPENAI_KEY)


def chain_config(
    *,
    router: Mapping[str, float | int] | None = None,
    maintenance: bool = False,
    stack: str = "prod",
) -> PlatformConfig:
    """The stack's config, with its own router timings and first-token deadlines unless
    `router` replaces them (the benchmarks' diagnostics only); `maintenance` switches every
    GPU class to maintenance, so each local model name is served straight by its cloud
    fallback."""
    from tests.support import stack_values  # test-only helper, imported where it is used

    values = stack_values(stack)
    if router is not None:
        values["llm_gateway"]["router"] = dict(router)
    if maintenance:
        for gpu_class in values["cluster"]["gpu_classes"].values():
            gpu_class["maintenance"] = True
    return parse_platform_config(values)


@dataclass
class Chain:
    """The running chain: the edge, LiteLLM and the fakes behind it."""

    edge: EdgeChain
    config: PlatformConfig
    local: dict[str, OpenAiFake]
    anthropic: AnthropicFake
    openai: OpenAiFake
    litellm: RunningProxy
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

    def served_by(self, reply: Reply, model: str) -> str:
        """`local` or `cloud`: where a 200 answer for a local `model` came from, told by the
        answer itself, since the edge hides LiteLLM's `x-litellm-model-id`. The cloud fake's
        whole answer is the fallback's; the local answer, or its start continued by the
        cloud (LiteLLM's mid-stream fallback), started at the local server; else empty."""
        content = reply.content()
        if content == self.anthropic.reply:
            return "cloud"
        if content == self.local[model].text or content.endswith(self.anthropic.continuation):
            return "local"
        return ""

    def litellm_connection(self, timeout: float = 15) -> http.client.HTTPConnection:
        """A connection straight to LiteLLM (bypassing the edge), verifying its certificate."""
        return connect(self.litellm.port, ca_pem=self.pki.ca_pem, timeout=timeout)

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
            return read_reply(conn, started)
        finally:
            conn.close()


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
        (root / "litellm").mkdir(parents=True, exist_ok=True)
        cert_file, key_file = pki.write_server_files(root / "litellm", "litellm", [INGRESS_NAME])
        with (
            litellm_proxy(
                root / "litellm",
                litellm_config_yaml(
                    config,
                    api_bases={name: f"{fake.base_url}/v1" for name, fake in local.items()},
                    redis=False,
                    mcp_urls=closed_mcp_urls(config),
                ),
                keys=KEYS,
                clouds=CloudBases(anthropic=anthropic.base_url, openai=f"{openai.base_url}/v1"),
                tls=ServerTls(cert=cert_file, key=key_file, ca_pem=pki.ca_pem),
            ) as litellm,
            edge_chain(
                root / "edge",
                pki,
                litellm.port,
                clients,
                keys,
                upstream_keys={name: MASTER_KEY for name in keys},
                **edge_overrides,
            ) as edge,
        ):
            chain = Chain(edge, config, local, anthropic, openai, litellm, pki)
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

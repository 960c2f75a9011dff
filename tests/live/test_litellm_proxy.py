"""The rendered LiteLLM config in the real proxy (litellm from .venv-litellm) on loopback.

One proxy per module runs the prod stack's rendered config, with the local models'
`api_base`s pointed at fake vLLM servers and the cloud providers' base URLs
(`ANTHROPIC_API_BASE`, `OPENAI_API_BASE`) at fake Anthropic and OpenAI APIs; their keys
come from the environment, as in the cluster. No `DATABASE_URL`: the master key is the
only key. The router timings are the stack's own, as rendered; the hostile-server
scenarios (hangs, stalls, slow first tokens, both down) are in tests/live/test_failover.py.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from components.config import PlatformConfig
from components.llm_gateway.costs import local_token_cost
from components.llm_gateway.gateway import METRICS_PATH
from components.llm_gateway.litellm_config import (
    backend_model_name,
    litellm_config_yaml,
    render_litellm_config,
)
from components.observability.metrics import LITELLM as LITELLM_METRICS
from components.observability.metrics import Kind
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.openai_server import OpenAiFake, fake_embedding
from tests.litellm_proxy import (
    LITELLM,
    CloudBases,
    ProxyKeys,
    Reply,
    RunningProxy,
    client_requests,
    closed_mcp_urls,
    connect,
    litellm_available,
    litellm_proxy,
    read_reply,
    stream_text,
)
from tests.support import stack_config

pytestmark = pytest.mark.live

if (why := litellm_available()) is not None:
    pytest.skip(why, allow_module_level=True)

MASTER_KEY = "sk-live-test-master-5f2b"
ANTHROPIC_KEY = "sk-ant-live-test-5f2b"
OPENAI_KEY = "sk-openai-live-test-5f2b"
MARKER = "live-test-request"


@dataclass
class Proxy:
    """The running proxy and the fakes behind it."""

    process: RunningProxy
    config: PlatformConfig
    local: dict[str, OpenAiFake]
    anthropic: AnthropicFake
    openai: OpenAiFake
    embeddings: OpenAiFake

    @property
    def port(self) -> int:
        """The proxy's loopback port."""
        return self.process.port

    def all_fakes(self) -> list[Any]:
        return [*self.local.values(), self.anthropic, self.openai, self.embeddings]


def _test_config() -> PlatformConfig:
    return stack_config("prod")


def _cooldown(proxy: Proxy) -> float:
    return float(proxy.config.llm_gateway.router.cooldown_seconds)


def _recovery(proxy: Proxy) -> float:
    """Cooldown, then one health-check period (interval + its timeout), plus slack."""
    router = proxy.config.llm_gateway.router
    return router.cooldown_seconds + router.health_check_interval_seconds + 5.0 + 4.0


def _request(
    proxy: Proxy,
    model: str,
    *,
    key: str | None = MASTER_KEY,
    stream: bool = False,
    timeout: float = 15.0,
) -> Reply:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": MARKER}]}
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    connection = connect(proxy.port, ca_pem=None, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request("POST", "/v1/chat/completions", json.dumps(body), headers)
        return read_reply(connection, started)
    finally:
        connection.close()


def _tagged(fake: Any) -> list[Any]:
    """Requests a fake got from this test (not the proxy's own health checks)."""
    return [s for s in fake.seen("/v1/") if MARKER in json.dumps(s.body.get("messages", []))]


def _wait_until_served_locally(proxy: Proxy, model: str, limit: float) -> float:
    """Seconds until a request for `model` is answered by its local backend again; until
    then each is answered, or refused with 429 while every deployment cools down."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        reply = _request(proxy, model)
        assert reply.status in (200, 429), reply.body
        if reply.deployment == f"local-{model}":
            return time.monotonic() - started
        time.sleep(0.25)
    pytest.fail(f"{model}: no request reached the local backend within {limit}s")


@pytest.fixture(scope="module")
def proxy_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """The proxy, started once for the module, and its fakes."""
    config = _test_config()
    local = {name: OpenAiFake(name) for name in sorted(config.inference.models)}
    anthropic = AnthropicFake(api_key=ANTHROPIC_KEY)
    openai = OpenAiFake("cloud-openai")
    embeddings = OpenAiFake("tei")  # the data layer's embeddings server
    fakes: list[Any] = [*local.values(), anthropic, openai, embeddings]
    directory = tmp_path_factory.mktemp("litellm")
    try:
        for fake in fakes:
            fake.start()
        config_yaml = litellm_config_yaml(
            config,
            mcp_urls=closed_mcp_urls(config),
            api_bases={
                **{name: f"{fake.base_url}/v1" for name, fake in local.items()},
                config.data.embeddings_model: f"{embeddings.base_url}/v1",
            },
            redis=False,
        )
        with litellm_proxy(
            directory,
            config_yaml,
            keys=ProxyKeys(master=MASTER_KEY, anthropic=ANTHROPIC_KEY, openai=OPENAI_KEY),
            clouds=CloudBases(anthropic=anthropic.base_url, openai=f"{openai.base_url}/v1"),
        ) as process:
            handle = Proxy(
                process=process,
                config=config,
                local=local,
                anthropic=anthropic,
                openai=openai,
                embeddings=embeddings,
            )
            print(f"\nLiteLLM proxy ready in {process.start_seconds:.1f}s")
            # First calls load each provider's code lazily; keep that out of timed tests.
            for model in [*local, *config.llm_gateway.cloud_models]:
                assert _request(handle, model).status == 200
            yield handle
    finally:
        for fake in fakes:
            fake.stop()


@pytest.fixture
def proxy(proxy_process: Proxy) -> Iterator[Proxy]:
    """The proxy, with every fake up and answering normally before and after the test."""
    for fake in proxy_process.all_fakes():
        fake.mode = "normal"
        fake.token_interval = 0.0
        fake.start()
        fake.clear()
    yield proxy_process
    for fake in proxy_process.all_fakes():
        fake.mode = "normal"
        fake.start()


def test_each_local_model_reaches_its_backend_at_its_cost(proxy: Proxy) -> None:
    for name, fake in proxy.local.items():
        for other in proxy.local.values():
            other.clear()
        reply = _request(proxy, name)
        assert reply.status == 200, reply.body
        assert reply.deployment == f"local-{name}"
        assert reply.json()["choices"][0]["message"]["content"] == fake.text
        seen = _tagged(fake)
        assert len(seen) == 1
        model = proxy.config.inference.models[name]
        assert seen[0].body["model"] == backend_model_name(name, model)
        for other_name, other in proxy.local.items():
            if other_name != name:
                assert _tagged(other) == []
        # Budgets bite for local traffic: the fake reports 7 prompt and 5 output tokens.
        cost = local_token_cost(proxy.config, name)
        expected = 7 * cost.input_cost_per_token + 5 * cost.output_cost_per_token
        assert float(reply.headers["x-litellm-response-cost"]) == pytest.approx(expected)
        assert expected > 0


def test_cloud_models_get_their_keys_from_the_environment(proxy: Proxy) -> None:
    claude = _request(proxy, "claude-haiku")
    assert claude.status == 200, claude.body
    assert claude.json()["choices"][0]["message"]["content"] == proxy.anthropic.reply
    (seen,) = _tagged(proxy.anthropic)
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY
    assert seen.body["model"] == "claude-haiku-4-5"

    gpt = _request(proxy, "gpt-mini")
    assert gpt.status == 200, gpt.body
    (seen,) = _tagged(proxy.openai)
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert seen.body["model"] == "gpt-4.1-mini"


def test_master_key_accepted_and_others_refused(proxy: Proxy) -> None:
    assert _request(proxy, "qwen3-8b").status == 200
    missing = _request(proxy, "qwen3-8b", key=None)
    assert missing.status == 401, missing.body
    # Without a database LiteLLM 1.83.14 answers any other key with 400
    # `no_db_connection` (user_api_key_auth.py: the check after the master-key compare,
    # no setting changes it); with its database an unknown key is a 401.
    wrong = _request(proxy, "qwen3-8b", key="sk-not-the-master-key")
    assert wrong.status == 400, wrong.body
    assert wrong.json()["error"]["type"] == "no_db_connection"
    assert len(_tagged(proxy.local["qwen3-8b"])) == 1  # only the accepted request


def test_stream_arrives_event_by_event(proxy: Proxy) -> None:
    fake = proxy.local["qwen3-8b"]
    fake.token_interval = 0.2
    body = json.dumps(
        {"model": "qwen3-8b", "stream": True, "messages": [{"role": "user", "content": MARKER}]}
    )
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    arrivals: list[tuple[float, str]] = []
    try:
        connection.request(
            "POST",
            "/v1/chat/completions",
            body,
            {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("content-type", "").startswith("text/event-stream")
        for _ in range(100):
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                arrivals.append((time.monotonic(), line[6:].decode().strip()))
    finally:
        connection.close()
    events = [event for _, event in arrivals]
    assert events[-1] == "[DONE]"
    assert stream_text(events) == fake.text
    content_times = [t for t, event in arrivals if event != "[DONE]" and stream_text([event])]
    assert len(content_times) == len(fake.words())
    # Five pieces 0.2 s apart: forwarded as they come, not gathered at the end.
    gaps = [later - earlier for earlier, later in itertools.pairwise(content_times)]
    assert min(gaps) > 0.1, gaps


def test_backend_stopped_mid_run_fails_over_and_traffic_returns(proxy: Proxy) -> None:
    name = "qwen3-14b"
    fake = proxy.local[name]
    replies: list[Reply] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 2.5

    def client() -> None:
        while time.monotonic() < stop_at:
            reply = _request(proxy, name)
            with lock:
                replies.append(reply)

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    time.sleep(0.8)
    fake.stop()
    stopped_at = time.monotonic()
    for thread in clients:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in clients)

    failed = [r for r in replies if r.status != 200]
    assert failed == [], [r.body[:300] for r in failed]
    answered_by = {r.deployment for r in replies}
    assert answered_by == {f"local-{name}", f"fallback-{name}-claude-haiku"}
    for reply in replies:
        expected = fake.text if reply.deployment == f"local-{name}" else proxy.anthropic.reply
        assert reply.json()["choices"][0]["message"]["content"] == expected
    assert any(s.at > stopped_at for s in _tagged(proxy.anthropic))
    # A dead backend costs no back-off (RETRY_BACKOFF_ENV): LiteLLM's default sleeps at
    # least 0.5 s before retrying it, on every request until the cooldown starts.
    assert max(r.seconds for r in replies) < 0.5, sorted(r.seconds for r in replies)[-3:]

    fake.start()
    assert _wait_until_served_locally(proxy, name, _recovery(proxy)) <= _recovery(proxy)


@pytest.mark.parametrize("name", ["llama-3-1-8b", "qwen3-14b"])
def test_stream_cut_after_first_event_is_completed_by_the_fallback(proxy: Proxy, name: str) -> None:
    fake = proxy.local[name]
    fallback = proxy.config.inference.models[name].cloud_fallback
    cloud = proxy.anthropic if fallback == "claude-haiku" else proxy.openai
    fake.mode = "break-after-first-event"
    reply = _request(proxy, name, stream=True)
    assert reply.status == 200
    events = reply.events()
    first = fake.words()[0]
    # LiteLLM's mid-stream fallback asks the fallback model to continue the partial
    # answer (a last assistant message: `prefix` for OpenAI, a prefill for Anthropic);
    # the client gets the partial answer and then the rest, never a bare stop.
    (continued,) = _tagged(cloud)
    last = continued.body["messages"][-1]
    assert last["role"] == "assistant"
    text = last["content"]
    if isinstance(text, list):
        text = "".join(block.get("text", "") for block in text)
    assert text == first
    if cloud is proxy.openai:
        assert last.get("prefix") is True
    assert stream_text(events) == first + cloud.continuation
    assert events[-1] == "[DONE]"


def test_a_plain_request_whose_stream_is_cut_gets_the_fallbacks_whole_answer(
    proxy: Proxy,
) -> None:
    """The gateway serves a plain request from a vLLM stream; a stream cut mid-answer (a
    crashed server) is a failed call: the client gets the fallback's whole answer, never
    the part the local server sent."""
    name = "qwen3-14b"
    fake = proxy.local[name]
    fake.mode = "break-after-first-event"
    reply = _request(proxy, name, stream=False)
    assert reply.status == 200, reply.body[:300]
    assert reply.deployment == f"fallback-{name}-claude-haiku"
    assert reply.json()["choices"][0]["message"]["content"] == proxy.anthropic.reply
    # The local server was asked for a stream, never for a plain answer: by each of the
    # router's attempts, and once more on a fresh connection each (LiteLLM's HTTP client
    # retries a dropped connection), before the fallback.
    asked = [s.body for s in client_requests(fake, "/v1/chat/completions")]
    assert asked and all(body["stream"] is True for body in asked), asked
    assert len(asked) <= 2 * (proxy.config.llm_gateway.router.num_retries + 1)


def test_stream_cut_without_fallback_ends_with_an_error_event(proxy: Proxy) -> None:
    proxy.anthropic.mode = "break-after-first-event"
    reply = _request(proxy, "claude-haiku", stream=True)
    assert reply.status == 200  # the headers left before the cut
    events = reply.events()
    assert stream_text(events[:1]) == proxy.anthropic.words()[0]
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert "incomplete chunked read" in error["message"]
    finishes = [
        choice.get("finish_reason")
        for event in events[:-1]
        for choice in json.loads(event).get("choices", [])
    ]
    assert not any(finishes), "a truncated answer must not be marked finished"


def test_stream_cut_when_the_fallback_also_fails_ends_with_an_error_event(
    proxy: Proxy,
) -> None:
    proxy.local["qwen3-14b"].mode = "break-after-first-event"
    proxy.anthropic.mode = "error"
    reply = _request(proxy, "qwen3-14b", stream=True)
    events = reply.events()
    assert stream_text(events[:1]) == proxy.local["qwen3-14b"].words()[0]
    assert "[DONE]" not in events
    assert "error" in json.loads(events[-1])


_KEY_NAMES = """
import inspect, json, re, litellm
from litellm.proxy._types import ConfigGeneralSettings
from litellm.proxy._experimental.mcp_server.mcp_server_manager import MCPServerManager
from litellm.types.router import RetryPolicy
loader = inspect.getsource(MCPServerManager.load_servers_from_config)
print(json.dumps({
    "router": sorted(litellm.Router.get_valid_args()),
    "general": sorted(ConfigGeneralSettings.model_fields),
    "retry_policy": sorted(RetryPolicy.model_fields),
    "module": sorted(name for name in dir(litellm) if not name.startswith("_")),
    "mcp_server": sorted(set(re.findall(r'server_config\\.get\\(\\s*"(\\w+)"', loader))),
}))
"""


def test_every_rendered_key_is_one_the_pinned_litellm_knows() -> None:
    found = subprocess.run(
        [str(LITELLM.parent / "python"), "-c", _KEY_NAMES],
        env={"PATH": os.environ.get("PATH", ""), "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    known = json.loads(found.stdout.strip().splitlines()[-1])
    config = stack_config("prod")  # has Redis: every optional key is rendered
    rendered = render_litellm_config(config)
    assert set(rendered["router_settings"]) <= set(known["router"])
    assert set(rendered["router_settings"]["retry_policy"]) <= set(known["retry_policy"])
    # Read by `proxy/proxy_server.py` `load_config` with `general_settings.get(...)`, not
    # declared in ConfigGeneralSettings.
    read_directly = {
        "disable_spend_logs",
        "enable_health_check_routing",
        "health_check_staleness_threshold",
    }
    assert set(rendered["general_settings"]) <= set(known["general"]) | read_directly
    # `cache_params` is read by the proxy itself; every other key is set on the module.
    assert set(rendered["litellm_settings"]) - {"cache_params"} <= set(known["module"])
    # Each MCP server entry: keys `load_servers_from_config` reads (a typo would be ignored).
    assert {"url", "transport", "static_headers", "allowed_tools"} <= set(known["mcp_server"])
    for entry in rendered["mcp_servers"].values():
        assert set(entry) <= set(known["mcp_server"]), entry


def _metrics(proxy: Proxy) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.request("GET", METRICS_PATH)
        response = connection.getresponse()
        assert response.status == 200, response.status
        return response.read().decode()
    finally:
        connection.close()


def test_metrics_the_dashboards_read_are_served(proxy: Proxy) -> None:
    name = "qwen3-8b"
    local = proxy.local[name]
    # An earlier test may have left a deployment cooling down; wait it out (bounded).
    limit = time.monotonic() + _recovery(proxy)
    while _request(proxy, "claude-haiku").status != 200:
        assert time.monotonic() < limit, "claude-haiku still cooling down"
        time.sleep(0.25)
    assert _request(proxy, name, stream=True).status == 200  # time to first token
    # The local backend fails and so does its fallback: failed fallbacks and failed
    # requests; more than `allowed_fails` failures cool both down. Then both recover.
    local.mode = "error"
    proxy.anthropic.mode = "error"
    for _ in range(proxy.config.llm_gateway.router.allowed_fails + 1):
        assert _request(proxy, name).status >= 429
    proxy.anthropic.mode = "normal"
    local.mode = "normal"
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in _metrics(proxy).splitlines()
        if line and not line.startswith("#")
    }
    missing = [
        metric
        for metric, kind in LITELLM_METRICS.metrics
        if (f"{metric}_bucket" if kind is Kind.HISTOGRAM else metric) not in exposed
    ]
    assert missing == [], sorted(m for m in exposed if m.startswith("litellm_"))
    # Leave the backend serving locally again for whatever runs next.
    _wait_until_served_locally(proxy, name, _recovery(proxy))


def test_embeddings_reach_the_data_layer_server(proxy: Proxy) -> None:
    """The data layer's embeddings model is served through the gateway (OpenAI's
    `/v1/embeddings`, as TEI answers it), under its own name and model id."""
    model = proxy.config.data.embeddings_model
    texts = [f"{MARKER} first passage", f"{MARKER} second passage"]
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=15)
    try:
        connection.request(
            "POST",
            "/v1/embeddings",
            json.dumps({"model": model, "input": texts}),
            {"Content-Type": "application/json", "Authorization": f"Bearer {MASTER_KEY}"},
        )
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        assert response.getheader("x-litellm-model-id") == f"local-{model}"
    finally:
        connection.close()
    vectors = [
        item["embedding"] for item in sorted(json.loads(body)["data"], key=lambda d: d["index"])
    ]
    assert len(vectors) == len(texts)
    for text, vector in zip(texts, vectors, strict=True):
        assert vector == pytest.approx(fake_embedding(text), abs=1e-6)
    (seen,) = [s for s in proxy.embeddings.seen("/v1/embeddings") if MARKER in json.dumps(s.body)]
    assert seen.body["input"] == texts
    assert not any(_tagged(fake) for fake in proxy.local.values())

"""Failover on the prod stack's rendered router settings, against hostile local servers.

One real LiteLLM proxy runs the prod config exactly as rendered (first-token deadlines,
cooldown, health-check interval: nothing shortened for the test), with every local model
on a fake vLLM and the clouds on fakes. Each test faults the three local models at once,
one scenario each, with streaming and non-streaming clients, then waits (bounded) until
each is served locally again. The proxy runs with `HTTP(S)_PROXY` pointing at a loopback
recorder, so any connection LiteLLM tries beyond the fakes would be seen.

A stream that stalls after its headers (a wedged vLLM sends them at once) hits a read
timeout that LiteLLM 1.83.14 re-raises without its mid-stream fallback and counts for no
cooldown (`litellm/litellm_core_utils/streaming_handler.py` `__anext__`); the gateway's
hooks (`components/llm_gateway/failover_hooks.py`) cool the deployment down and finish
the answer from the fallback. These tests run with those hooks, as the gateway does.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.config import PlatformConfig
from components.inference.deadlines import (
    first_token_deadline,
    served_context,
    stream_idle_deadline,
)
from components.inference.scaling import demand_query
from components.llm_gateway.litellm_config import (
    READINESS_POLL_SECONDS,
    READINESS_TIMEOUT_SECONDS,
    REDIS_REREAD_SECONDS,
    fallback_id,
    gated_models,
    is_gated,
    litellm_config_yaml,
)
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.openai_server import OpenAiFake, is_health_check
from tests.litellm_proxy import (
    CloudBases,
    ProxyKeys,
    Reply,
    client_requests,
    closed_mcp_urls,
    connect,
    litellm_available,
    litellm_proxy,
    read_reply,
)
from tests.redis_server import RedisServer, redis_available, redis_server
from tests.support import stack_config, vector_selectors

pytestmark = pytest.mark.live

if (why := litellm_available()) is not None:
    pytest.skip(why, allow_module_level=True)

MASTER_KEY = "sk-failover-test-master-91c3"
ANTHROPIC_KEY = "sk-ant-failover-91c3"
OPENAI_KEY = "sk-openai-failover-91c3"
MARKER = "failover-test"
SLACK_S = 2.0
"""Generous margin on every timed bound (a loaded 2-core machine)."""


class OutboundRecorder:
    """A loopback HTTP proxy that records every connection attempt and answers none."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    first = connection.recv(4096).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"?"
                self.attempts.append(first.decode(errors="replace"))
                connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    def __enter__(self) -> OutboundRecorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@dataclass
class Gateway:
    """The proxy (one process per replica) on a stack's config, its fakes and the
    outbound recorder."""

    ports: tuple[int, ...]
    config: PlatformConfig
    local: dict[str, OpenAiFake]
    anthropic: AnthropicFake
    openai: OpenAiFake
    outbound: OutboundRecorder

    @property
    def port(self) -> int:
        """The first replica's port."""
        return self.ports[0]

    def cloud_of(self, name: str) -> AnthropicFake | OpenAiFake:
        fallback = self.config.inference.models[name].cloud_fallback
        return self.anthropic if fallback == "claude-haiku" else self.openai

    def fallback(self, name: str) -> str:
        fallback = self.config.inference.models[name].cloud_fallback
        assert fallback is not None
        return fallback_id(name, fallback)


@dataclass
class Sent:
    """One client request and its outcome."""

    name: str
    stream: bool
    started: float
    reply: Reply | None = None
    error: str = ""
    events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Answered in full: 200, and a stream that ends in `[DONE]` with no error event."""
        if self.reply is None or self.reply.status != 200:
            return False
        if not self.stream:
            return True
        events = self.reply.events()
        return bool(events) and events[-1] == "[DONE]" and not any('"error"' in e for e in events)


def _request(
    gateway: Gateway, name: str, *, stream: bool, timeout: float, replica: int = 0
) -> Sent:
    body = {"model": name, "stream": stream, "messages": [{"role": "user", "content": MARKER}]}
    sent = Sent(name=name, stream=stream, started=time.monotonic())
    connection = connect(gateway.ports[replica], ca_pem=None, timeout=timeout)
    try:
        connection.request(
            "POST",
            "/v1/chat/completions",
            json.dumps(body),
            {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        sent.reply = read_reply(connection, sent.started)
    except OSError as error:
        sent.error = repr(error)
    finally:
        connection.close()
    return sent


def _clients(
    gateway: Gateway,
    plans: list[tuple[str, bool, float]],
    *,
    timeout: float,
    pause: float = 0.3,
) -> list[Sent]:
    """Each plan (model, stream, seconds) is one client sending requests back to back
    for that long (at most 100 requests each)."""
    done: list[Sent] = []
    lock = threading.Lock()

    def client(name: str, stream: bool, seconds: float) -> None:
        until = time.monotonic() + seconds
        for _ in range(100):
            if time.monotonic() >= until:
                return
            sent = _request(gateway, name, stream=stream, timeout=timeout)
            with lock:
                done.append(sent)
            time.sleep(pause)

    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        futures = [pool.submit(client, *plan) for plan in plans]
        for future in futures:
            future.result(timeout=timeout + max(p[2] for p in plans) + 10)
    return sorted(done, key=lambda s: s.started)


def _served_locally_again(
    gateway: Gateway,
    names: list[str],
    limit: float,
    *,
    statuses: tuple[int, ...] = (200,),
    replica: int = 0,
) -> dict[str, float]:
    """Seconds until each model is answered by its local server again (bounded); every
    answer until then has one of `statuses`."""
    started = time.monotonic()
    back: dict[str, float] = {}
    for _ in range(400):
        for name in names:
            if name in back:
                continue
            sent = _request(gateway, name, stream=False, timeout=limit, replica=replica)
            assert sent.reply is not None, (name, sent.error)
            assert sent.reply.status in statuses, (name, sent.reply.body[:300])
            if sent.ok and sent.reply.deployment == f"local-{name}":
                back[name] = time.monotonic() - started
        if len(back) == len(names) or time.monotonic() - started > limit:
            break
        time.sleep(0.25)
    missing = sorted(set(names) - set(back))
    assert missing == [], f"not served locally within {limit} s: {missing}"
    return back


def _gate_seconds(config: PlatformConfig, name: str) -> float:
    """How long the hooks take to see a gated server come or go: one probe period."""
    return READINESS_POLL_SECONDS + READINESS_TIMEOUT_SECONDS if is_gated(config, name) else 0.0


def _recovery_limit(gateway: Gateway, name: str) -> float:
    """Cooldown, then one health-check period (interval + its timeout), plus slack."""
    router = gateway.config.llm_gateway.router
    return (
        router.cooldown_seconds
        + router.health_check_interval_seconds
        + first_token_deadline(gateway.config, name)
        + _gate_seconds(gateway.config, name)
        + SLACK_S
    )


@contextlib.contextmanager
def _running_gateway(
    stack: str, directory: Path, *, replicas: int = 1, redis: RedisServer | None = None
) -> Iterator[Gateway]:
    """The proxy on the stack's rendered config, its fakes started and every model warm;
    with `redis`, `replicas` processes share their router state through it, as the
    gateway's replicas do on prod."""
    config = stack_config(stack)
    local = {name: OpenAiFake(name) for name in sorted(config.inference.models)}
    anthropic = AnthropicFake(api_key=ANTHROPIC_KEY)
    openai = OpenAiFake("cloud-openai")
    embeddings = OpenAiFake("tei")
    fakes: list[Any] = [*local.values(), anthropic, openai, embeddings]
    with OutboundRecorder() as outbound, contextlib.ExitStack() as proxies:
        try:
            for fake in fakes:
                fake.start()
            bases = {name: f"{fake.base_url}/v1" for name, fake in local.items()}
            if config.data.enabled:
                bases[config.data.embeddings_model] = f"{embeddings.base_url}/v1"
            config_yaml = litellm_config_yaml(
                config,
                api_bases=bases,
                redis=redis is not None,
                mcp_urls=closed_mcp_urls(config),
            )
            # Every outbound connection goes to the recorder, but those to loopback.
            proxy_env = {
                "HTTP_PROXY": outbound.url,
                "HTTPS_PROXY": outbound.url,
                "http_proxy": outbound.url,
                "https_proxy": outbound.url,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                **(redis.env() if redis is not None else {}),
            }
            ports = tuple(
                proxies.enter_context(
                    litellm_proxy(
                        directory / f"replica-{replica}",
                        config_yaml,
                        keys=ProxyKeys(
                            master=MASTER_KEY, anthropic=ANTHROPIC_KEY, openai=OPENAI_KEY
                        ),
                        clouds=CloudBases(
                            anthropic=anthropic.base_url, openai=f"{openai.base_url}/v1"
                        ),
                        extra_env=proxy_env,
                    )
                ).port
                for replica in range(replicas)
            )
            gateway = Gateway(ports, config, local, anthropic, openai, outbound)
            for replica in range(replicas):
                for name in [*local, *config.llm_gateway.cloud_models]:
                    warm = _request(gateway, name, stream=False, timeout=30, replica=replica)
                    assert warm.ok, (name, warm.error, warm.reply and warm.reply.body[:300])
            yield gateway
        finally:
            proxies.close()
            for fake in fakes:
                fake.stop()


@pytest.fixture(scope="module")
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with _running_gateway("prod", tmp_path_factory.mktemp("failover")) as gateway:
        yield gateway


@pytest.fixture
def gateway(gateway_process: Gateway) -> Iterator[Gateway]:
    def reset() -> None:
        for fake in [*gateway_process.local.values(), gateway_process.anthropic]:
            fake.mode = "normal"
            fake.first_token_delay = 0.0
            fake.token_interval = 0.0
            fake.pause_seconds = 0.0
            fake.release.set()
            fake.start()
            fake.clear()
        gateway_process.openai.mode = "normal"
        gateway_process.openai.start()
        gateway_process.openai.clear()

    reset()
    for fake in gateway_process.local.values():
        fake.release.clear()
    yield gateway_process
    reset()


def _fallback_answers(gateway: Gateway, sent: Sent) -> bool:
    assert sent.reply is not None
    return sent.reply.deployment == gateway.fallback(sent.name)


def _check_answer(gateway: Gateway, sent: Sent) -> None:
    """A whole answer, from the local server or the fallback, nothing else."""
    assert sent.reply is not None
    content = sent.reply.content()
    local = gateway.local[sent.name]
    cloud = gateway.cloud_of(sent.name)
    if sent.reply.deployment == f"local-{sent.name}":
        # A stream the local server cut or stalled is finished by the cloud: its whole
        # answer when nothing was sent yet, else the rest after the local part.
        assert content in (local.text, cloud.reply) or content.endswith(cloud.continuation), content
        if content.endswith(cloud.continuation):
            assert local.text.startswith(content[: -len(cloud.continuation)]), content
    else:
        assert sent.reply.deployment == gateway.fallback(sent.name), sent.reply.deployment
        assert content == cloud.reply, content


def _answered_by_fallback(gateway: Gateway, sent: Sent) -> bool:
    """The cloud answered (alone, or finishing a stream the local server stalled)."""
    assert sent.reply is not None
    cloud = gateway.cloud_of(sent.name)
    content = sent.reply.content()
    return content == cloud.reply or content.endswith(cloud.continuation)


def test_errors_rate_limits_and_crashes_fail_over_with_no_failed_request(
    gateway: Gateway,
) -> None:
    """500s, 429s with Retry-After and a crashed server (connections reset), streaming and
    not: every request is answered, at once, by the fallback; each returns afterwards."""
    gateway.local["qwen3-14b"].mode = "error"
    gateway.local["llama-3-1-8b"].mode = "rate-limited"
    gateway.local["qwen3-8b"].mode = "down"
    gateway.local["Qwen3-4B"].mode = "error"  # the workstation's second model
    faulted_at = time.monotonic()
    names = sorted(gateway.local)
    sent = _clients(gateway, [(n, s, 4.0) for n in names for s in (False, True)], timeout=20)

    failed = [(s.name, s.stream, s.error, s.reply and s.reply.body[:200]) for s in sent if not s.ok]
    assert failed == []
    for one in sent:
        _check_answer(gateway, one)
        assert one.reply is not None
        # A connection LiteLLM kept alive to the crashed server may still answer at first.
        if one.started > faulted_at + 1.0:
            assert _fallback_answers(gateway, one), (one.name, one.reply.deployment)
        # No deadline is waited for: the error comes at once (429: after its Retry-After).
        retry_after = gateway.local[one.name].retry_after if one.name == "llama-3-1-8b" else 0
        assert one.reply.seconds < retry_after + SLACK_S, (one.name, one.reply.seconds)
    assert all(len([s for s in sent if s.name == n]) >= 6 for n in names)

    for fake in gateway.local.values():
        fake.mode = "normal"
    back = _served_locally_again(gateway, names, max(_recovery_limit(gateway, n) for n in names))
    print(f"\nback to local after errors/429/crash: {back}")


def test_a_hung_server_loses_requests_to_the_fallback_within_its_deadline(
    gateway: Gateway,
) -> None:
    """Accept-and-hang (qwen3-8b), a wedged vLLM that sends a stream's headers and then
    nothing (qwen3-14b), and one that stops after two events (llama-3-1-8b), each met by a
    streaming and a non-streaming client from the first request on: every request is
    answered in full, by the fallback alone or finishing what the local server sent, within
    the first-token deadline (the stream idle deadline once tokens have come), plus the
    cloud's answer. vLLM sends nothing of a plain answer before it is complete, so the
    gateway asks it for a stream: the first non-streaming request is bound by the same
    deadline. After `allowed_fails` + 1 failures (one per client at most in flight), the
    server is out of rotation and requests go to the fallback at once, until it recovers."""
    config = gateway.config
    modes = {
        "qwen3-8b": "hang",
        "qwen3-14b": "hang-after-headers",
        "llama-3-1-8b": "hang-after-tokens",
        "Qwen3-4B": "hang",
    }
    for name, mode in modes.items():
        gateway.local[name].mode = mode
    names = sorted(gateway.local)
    plans = [(n, stream, 10.0) for n in names for stream in (True, False)]
    sent = _clients(gateway, plans, timeout=30)

    failed = [(s.name, s.reply and s.reply.body[-300:]) for s in sent if not s.ok]
    assert failed == []
    allowed = config.llm_gateway.router.allowed_fails
    for name in names:
        deadline = first_token_deadline(config, name)
        bound = (
            stream_idle_deadline(config, name) if modes[name] == "hang-after-tokens" else deadline
        )
        mine = [s for s in sent if s.name == name]
        assert len(mine) >= 6, name
        for one in mine:
            assert one.reply is not None
            # Nobody waits on the dead server past its deadline (plus the cloud's answer).
            assert one.reply.seconds <= bound + SLACK_S, (name, one.stream, one.reply.seconds)
            _check_answer(gateway, one)
            assert _answered_by_fallback(gateway, one), (name, one.reply.content())
        first_plain = next(s for s in mine if not s.stream)
        assert first_plain.reply is not None
        # It reached the hung server (it waited its deadline), and no longer than that.
        assert bound - 0.5 <= first_plain.reply.seconds <= bound + SLACK_S, first_plain
        waited = [s for s in mine if s.reply is not None and s.reply.seconds > 1.0]
        # Only the requests before the cooldown wait for the deadline: `allowed_fails` + 1
        # failures start it, and each of the two clients may have one more in flight then.
        assert len(waited) <= allowed + 1 + 2, (
            name,
            [(s.stream, s.reply and s.reply.seconds) for s in mine],
        )
        assert all(s.reply is not None and s.reply.seconds < SLACK_S for s in mine[-4:]), name

    for fake in gateway.local.values():
        fake.mode = "normal"
        fake.release.set()
    back = _served_locally_again(gateway, names, max(_recovery_limit(gateway, n) for n in names))
    print(f"\nback to local after the hang: {back}")


def test_slow_first_tokens_pauses_and_trickles(gateway: Gateway) -> None:
    """At once, one model each, streaming and not: a first token just under the deadline
    followed by one pause longer than the deadline but within the idle deadline (qwen3-8b:
    a preempted sequence) is served locally in full; a first token over the deadline
    (llama-3-1-8b) loses the request to the fallback within the deadline; a trickle of one
    token per idle deadline and more (qwen3-14b) is cut at the idle deadline and the
    fallback finishes the stream, or answers the non-streaming request whole."""
    config = gateway.config
    under = gateway.local["qwen3-8b"]
    under.first_token_delay = first_token_deadline(config, "qwen3-8b") - 1.5
    under.pause_seconds = first_token_deadline(config, "qwen3-8b") + 1.5
    assert under.pause_seconds + SLACK_S < stream_idle_deadline(config, "qwen3-8b")
    late = gateway.local["llama-3-1-8b"]
    late.first_token_delay = first_token_deadline(config, "llama-3-1-8b") + 1.0
    trickle = gateway.local["qwen3-14b"]
    trickle.token_interval = stream_idle_deadline(config, "qwen3-14b") + 1.5
    plans = [
        (fake.name, stream, 0.5) for fake in (under, late, trickle) for stream in (False, True)
    ]
    sent = _clients(gateway, plans, timeout=40)
    assert all(s.ok for s in sent), [s.reply and s.reply.body[-200:] for s in sent if not s.ok]
    assert len(sent) == len(plans)
    for one in sent:
        assert one.reply is not None
        content = one.reply.content()
        local = gateway.local[one.name]
        cloud = gateway.cloud_of(one.name)
        if one.name == "qwen3-8b":
            assert one.reply.deployment == f"local-{one.name}", one.reply.deployment
            assert content == local.text
            took = under.first_token_delay + under.pause_seconds
            assert took - 0.2 <= one.reply.seconds <= took + SLACK_S, one.reply.seconds
            if one.stream:
                delay = under.first_token_delay
                assert delay - 0.2 <= one.reply.first_byte_seconds <= delay + SLACK_S
        elif one.name == "llama-3-1-8b":
            deadline = first_token_deadline(config, one.name)
            assert one.reply.seconds <= deadline + SLACK_S, (one.stream, one.reply.seconds)
            assert content == cloud.reply
        else:
            idle = stream_idle_deadline(config, one.name)
            assert idle - 0.5 <= one.reply.seconds <= idle + SLACK_S, (
                one.stream,
                one.reply.seconds,
            )
            # A stream keeps what it sent and the fallback continues; a plain answer is whole.
            assert content == (local.words()[0] + cloud.continuation if one.stream else cloud.reply)
    for fake in gateway.local.values():
        fake.first_token_delay = 0.0
        fake.token_interval = 0.0
        fake.pause_seconds = 0.0
    names = sorted(gateway.local)
    _served_locally_again(gateway, names, max(_recovery_limit(gateway, n) for n in names))


def test_both_down_is_one_503_that_names_nothing_internal(gateway: Gateway) -> None:
    """The local server and its cloud fallback both fail: one OpenAI-format 503 with
    `Retry-After`, quickly, naming no host, port, key or deployment."""
    name = "qwen3-14b"
    gateway.local[name].stop()
    gateway.anthropic.mode = "error"
    sent = _clients(gateway, [(name, False, 1.5), (name, True, 1.5)], timeout=30)
    assert len(sent) >= 4
    retry_after = str(gateway.config.llm_gateway.router.cooldown_seconds)
    for one in sent:
        assert one.reply is not None
        assert one.reply.status == 503, one.reply.body[:300]
        assert one.reply.headers.get("retry-after") == retry_after
        assert one.reply.seconds < SLACK_S
        error = one.reply.json()["error"]
        assert error["type"] == "service_unavailable"
        assert name in error["message"]
        text = json.dumps(error)
        for secret in (MASTER_KEY, ANTHROPIC_KEY, OPENAI_KEY, "127.0.0.1", "Traceback"):
            assert secret not in text, (secret, text)
        for internal in ("local-", "fallback-", "Anthropic", "litellm"):
            assert internal not in text, (internal, text)
        for fake in [*gateway.local.values(), gateway.anthropic, gateway.openai]:
            assert str(fake.port) not in text, text
    gateway.local[name].start()
    gateway.anthropic.mode = "normal"
    # Both deployments of the group cool down for a while: 503 until one is back.
    _served_locally_again(gateway, [name], _recovery_limit(gateway, name), statuses=(200, 503))


def test_no_call_leaves_for_anything_but_the_fakes(gateway: Gateway) -> None:
    """Start-up, first calls of each provider (a Llama model included: no tokenizer from
    the Hub), streams, fallbacks and health checks ran through this module's proxy with
    every outbound connection sent to a recorder: it saw none."""
    long_prompt = "word " * 20_000  # counted for the context check with the local tokenizer
    for name in gateway.local:
        assert _request(gateway, name, stream=True, timeout=30).ok
    connection = connect(gateway.port, ca_pem=None, timeout=30)
    try:
        connection.request(
            "POST",
            "/v1/chat/completions",
            json.dumps({"model": "llama-3-1-8b", "messages": [{"role": "user", "content": "x"}]}),
            {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        assert read_reply(connection, time.monotonic()).status == 200
    finally:
        connection.close()
    over = _request_with(gateway, "qwen3-8b", long_prompt)
    assert over.status == 200
    assert gateway.outbound.attempts == []


def _request_with(gateway: Gateway, name: str, content: str) -> Reply:
    connection = connect(gateway.port, ca_pem=None, timeout=30)
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            "/v1/chat/completions",
            json.dumps({"model": name, "messages": [{"role": "user", "content": content}]}),
            {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        return read_reply(connection, started)
    finally:
        connection.close()


def test_a_prompt_over_the_served_context_goes_straight_to_the_fallback(
    gateway: Gateway,
) -> None:
    """The local model advertises what vLLM serves; a longer prompt never reaches it."""
    name = "qwen3-8b"
    served = served_context(gateway.config, name)
    prompt = "word " * (served + 500)
    reply = _request_with(gateway, name, prompt)
    assert reply.status == 200, reply.body[:300]
    assert reply.deployment == gateway.fallback(name)
    tagged: Callable[[Any], bool] = lambda s: "word word" in json.dumps(s.body)  # noqa: E731
    assert not [s for s in gateway.local[name].seen("/v1/") if tagged(s)]
    short = _request_with(gateway, name, "word " * 100)
    assert short.deployment == f"local-{name}"


def test_dev_a_wedged_server_is_left_within_its_deadline(tmp_path: Path) -> None:
    """The dev stack on its own rendered settings (one model, its fit-shortened context
    and its own deadline): a wedged server costs the first `allowed_fails` + 1 requests,
    streaming or not, their first-token deadline, the fallback answers them, and every
    later request goes to the fallback at once; a prompt over the served context never
    reaches the local server; nothing leaves for the internet."""
    with _running_gateway("dev", tmp_path / "dev") as dev:
        (name,) = dev.local
        deadline = first_token_deadline(dev.config, name)
        served = served_context(dev.config, name)
        assert served < dev.config.inference.models[name].context_length  # the fit shortened it
        over = _request_with(dev, name, "word " * (served + 200))
        assert over.status == 200 and over.deployment == dev.fallback(name)
        dev.local[name].mode = "hang-after-headers"
        sent = [_request(dev, name, stream=stream, timeout=30) for stream in (False, True) * 2]
        assert all(s.ok for s in sent), [s.reply and s.reply.body[-200:] for s in sent]
        times = [s.reply.seconds for s in sent if s.reply is not None]
        waited = dev.config.llm_gateway.router.allowed_fails + 1
        assert all(deadline - 0.5 <= t <= deadline + SLACK_S for t in times[:waited]), times
        assert all(t < SLACK_S for t in times[waited:]), times
        assert all(_answered_by_fallback(dev, s) for s in sent)
        assert dev.outbound.attempts == []


def test_replicas_share_what_takes_a_server_out_of_rotation(tmp_path: Path) -> None:
    """Two gateway replicas on the prod config share their router state through Redis, as
    on prod. The local servers pass their one-token health checks and fail real work, so
    only the shared state can steer the second replica: once the first has cooled a
    server down (`allowed_fails` + 1 missed first tokens; one stream stalled mid-answer),
    the second, which read the shared state just before, sends its next request for that
    model to the fallback at once; both come back to local once the cooldown is over
    (the second no later than the first: LiteLLM would keep its copy for ten minutes)."""
    if (why := redis_available()) is not None:
        pytest.fail(why)
    with (
        redis_server(tmp_path / "redis", "redis-failover-91c3") as redis,
        _running_gateway("prod", tmp_path / "proxy", replicas=2, redis=redis) as gateway,
    ):
        config = gateway.config
        wedged, stalled = gateway.local["qwen3-14b"], gateway.local["llama-3-1-8b"]
        for fake, mode in ((wedged, "hang-after-headers"), (stalled, "hang-after-tokens")):
            fake.spare_health_checks = True
            fake.release.clear()
            fake.mode = mode
        allowed = config.llm_gateway.router.allowed_fails
        # First-token misses count towards `allowed_fails`; a stall mid-answer cools down.
        for fake, requests in ((wedged, allowed + 1), (stalled, 1)):
            failing = [
                _request(gateway, fake.name, stream=fake is stalled, timeout=30)
                for _ in range(requests - 1)
            ]
            # The second replica reads the shared state (no cooldown yet) just before.
            assert _request(gateway, "qwen3-8b", stream=False, timeout=30, replica=1).ok
            failing.append(_request(gateway, fake.name, stream=fake is stalled, timeout=30))
            cooled_at = time.monotonic()
            assert all(s.ok and _answered_by_fallback(gateway, s) for s in failing), failing
            assert all(s.reply is not None and s.reply.seconds > 1.0 for s in failing), failing
            # Past the replicas' re-read interval of the shared state, within the cooldown.
            time.sleep(max(0.0, cooled_at + REDIS_REREAD_SECONDS + 0.5 - time.monotonic()))
            for stream in (False, True):
                other = _request(gateway, fake.name, stream=stream, timeout=30, replica=1)
                assert other.reply is not None and other.ok, other
                assert other.reply.seconds < SLACK_S, (fake.name, stream, other.reply.seconds)
                assert other.reply.deployment == gateway.fallback(fake.name), other.reply
        for fake in (wedged, stalled):
            fake.mode = "normal"
            fake.release.set()
        names = [wedged.name, stalled.name]
        limit = max(_recovery_limit(gateway, n) for n in names)
        for replica in (1, 0):
            back = _served_locally_again(gateway, names, limit, replica=replica)
            print(f"\nreplica {replica} back to local: {back}")


# --- a model scaled to zero ----------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _scrape(gateway: Gateway) -> list[tuple[str, dict[str, str], float]]:
    """The proxy's Prometheus samples: (name, labels, value)."""
    connection = connect(gateway.port, ca_pem=None, timeout=10)
    try:
        connection.request("GET", "/metrics/")
        response = connection.getresponse()
        assert response.status == 200, response.status
        text = response.read().decode()
    finally:
        connection.close()
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        labels = dict(_LABEL.findall(match.group(2) or ""))
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def _matches(matcher: Any, labels: dict[str, str]) -> bool:
    value = labels.get(matcher.name, "")
    op = str(matcher.op)
    if op.endswith("NotEqual"):
        return value != matcher.value
    if op.endswith("Equal"):
        return value == matcher.value
    if op.endswith("NotRe"):
        return re.fullmatch(matcher.value, value) is None
    return re.fullmatch(matcher.value, value) is not None


def _selected_total(samples: list[tuple[str, dict[str, str], float]], query: str) -> float:
    """The sum of the samples the query's selectors pick: what a trigger reads, before
    its functions."""
    selectors = vector_selectors(query)
    assert selectors, query
    return sum(
        value
        for name, labels, value in samples
        if any(
            s.name == name and all(_matches(m, labels) for m in s.matchers.matchers)
            for s in selectors
        )
    )


def _health_check_period(config: PlatformConfig) -> float:
    """LiteLLM runs every deployment's background check, waits for the slowest (each
    bounded by its first-token deadline), then sleeps the interval
    (`litellm/proxy/proxy_server.py` `_run_background_health_check`)."""
    slowest = max(first_token_deadline(config, n) for n in config.inference.models)
    return config.llm_gateway.router.health_check_interval_seconds + slowest


def _health_checks(fake: OpenAiFake) -> list[Any]:
    return [s for s in fake.seen("/v1/") if is_health_check(s.body)]


def _demand_settles(gateway: Gateway, query: str, expected: float) -> float:
    """The demand series once they reach `expected` (LiteLLM counts a request after its
    answer, in the background), bounded."""
    total = _selected_total(_scrape(gateway), query)
    for _ in range(20):
        if total >= expected:
            break
        time.sleep(0.25)
        total = _selected_total(_scrape(gateway), query)
    return total


def test_a_model_scaled_to_zero_is_served_by_its_fallback_at_once_then_locally_after_start(
    gateway: Gateway,
) -> None:
    """KEDA has scaled the prod model with `autoscaling.min: 0` to zero: its Service has no
    endpoints, and the mesh's proxy would hold each request for its failfast timeout and
    then answer 503. The gateway's readiness gate knows: every request, streaming or not,
    is answered by the cloud fallback at once and none reaches the Service. Each one counts
    in the series the ScaledObject's demand trigger reads (what wakes the server); the
    background health checks do not. After a simulated start traffic returns to the local
    server, every request answered meanwhile."""
    config = gateway.config
    (name,) = gated_models(config)
    local = gateway.local[name]
    query = demand_query(name)
    local.mode = "no-endpoints"
    assert local.failfast_seconds > SLACK_S  # a request that reached it would show
    # KEDA stops a server only after idle minutes without a request: the probes have long
    # seen it go when the next request comes.
    time.sleep(_gate_seconds(config, name) + 0.5)
    before = _selected_total(_scrape(gateway), query)
    sent = _clients(gateway, [(name, False, 2.0), (name, True, 2.0)], timeout=30)
    for one in sent:
        assert one.ok and one.reply is not None, (one.error, one.reply and one.reply.body[:200])
        assert one.reply.seconds < SLACK_S, (one.stream, one.reply.seconds)
        assert one.reply.deployment == gateway.fallback(name), one.reply.deployment
        assert one.reply.content() == gateway.cloud_of(name).reply
    assert len(sent) >= 4
    assert client_requests(local) == []
    woken = _demand_settles(gateway, query, before + len(sent))
    assert woken == before + len(sent)
    # The gateway's background health checks keep calling the server while it is down;
    # were they demand, it would never stay asleep.
    checks = len(_health_checks(local))
    limit = _health_check_period(config) + SLACK_S
    for _ in range(int(limit / 0.25)):
        if len(_health_checks(local)) > checks:
            break
        time.sleep(0.25)
    assert len(_health_checks(local)) > checks, f"no health check within {limit} s"
    time.sleep(local.failfast_seconds + 0.5)  # it is answered, fails and is logged
    assert _selected_total(_scrape(gateway), query) == woken

    # The simulated start: the server answers its probes and requests again.
    local.mode = "normal"
    limit = _gate_seconds(config, name) + _health_check_period(config) + SLACK_S
    started = time.monotonic()
    answered = 0
    back = None
    for _ in range(400):
        reply = _request(gateway, name, stream=False, timeout=limit).reply
        answered += 1
        assert reply is not None and reply.status == 200, reply and reply.body[:300]
        if reply.deployment == f"local-{name}":
            back = time.monotonic() - started
            break
        assert time.monotonic() - started < limit, f"not local again within {limit} s"
        time.sleep(0.25)
    assert back is not None
    print(f"\nback to local {back:.1f} s after the simulated start")
    assert _demand_settles(gateway, query, woken + answered) == woken + answered

"""Scenarios (2), (3) and (5) of issue 10 through the whole chain on loopback: the rendered
edge config in nginx, the rendered LiteLLM config in the real proxy, fake vLLM servers and a
fake Anthropic API as the cloud (tests/e2e/chain.py).

One chain serves the module (LiteLLM takes seconds to start); each scenario faults a
different local model, so a cooldown left by one never shapes another. Every scenario is
bounded in requests and seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from components.edge.nginx_conf import ClientLimit
from components.inference.deadlines import first_token_deadline
from tests.e2e.chain import MASTER_KEY, Chain, litellm_chain
from tests.litellm_proxy import Reply, client_requests, litellm_available

pytestmark = [pytest.mark.e2e, pytest.mark.live]

_missing = litellm_available()
if _missing is not None:
    pytest.skip(_missing, allow_module_level=True)

KEYS = {
    "alice": "sk-e2e-chain-AliceAliceAlice0123456789",
    "bob": "sk-e2e-chain-BobBobBobBobBob0123456789",
}
CLIENTS = (
    ClientLimit(name="alice", requests_per_second=200, burst=200),
    ClientLimit(name="bob", requests_per_second=200, burst=200),
)
SLACK_S = 2.0
MARKER = "chain-scenario"


@pytest.fixture(scope="module")
def running_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with litellm_chain(tmp_path_factory.mktemp("chain"), CLIENTS, KEYS) as chain:
        yield chain


@pytest.fixture
def chain(running_chain: Chain) -> Iterator[Chain]:
    running_chain.reset()
    try:
        yield running_chain
    finally:
        running_chain.reset()


def _tagged(chain: Chain, fake_name: str) -> int:
    fake = chain.local.get(fake_name) or chain.openai
    return sum(MARKER in json.dumps(s.body.get("messages", [])) for s in fake.seen("/v1/"))


def _recovery_s(chain: Chain, model: str) -> float:
    """Cooldown, then one health-check period (interval + its timeout), plus slack."""
    router = chain.config.llm_gateway.router
    return (
        router.cooldown_seconds
        + router.health_check_interval_seconds
        + first_token_deadline(chain.config, model)
        + 2 * SLACK_S
    )


def _wait_until_local(chain: Chain, model: str, limit_s: float) -> float:
    """Seconds until `model` is answered by its local backend again (at most `limit_s`)."""
    started = time.monotonic()
    for _ in range(200):
        reply = chain.chat(KEYS["alice"], model, marker="recovery-probe")
        assert reply.status == 200, reply.body[:300]
        if chain.served_by(reply, model) == "local":
            return time.monotonic() - started
        if time.monotonic() - started > limit_s:
            break
        time.sleep(0.2)
    pytest.fail(f"{model}: not served locally again within {limit_s} s")


def test_local_backend_killed_mid_run_no_client_request_fails(chain: Chain) -> None:
    """(2) Two clients send streaming and plain requests while the fake vLLM is stopped:
    every request succeeds, the cloud's share goes from none to all, and traffic returns
    to the local backend once it is back and the cooldown has passed."""
    model = "qwen3-14b"
    fake = chain.local[model]
    fake.token_interval = 0.01
    replies: list[tuple[float, Reply]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 3.0

    def client(name: str, stream: bool) -> None:
        for _ in range(300):
            if time.monotonic() >= stop_at:
                return
            started = time.monotonic()
            reply = chain.chat(KEYS[name], model, stream=stream, marker=MARKER)
            with lock:
                replies.append((started, reply))

    threads = [
        threading.Thread(target=client, args=(name, stream))
        for name in KEYS
        for stream in (False, True)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    fake.stop()
    stopped_at = time.monotonic()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    failed = [(r.status, r.body[:200]) for _, r in replies if r.status != 200]
    assert failed == []
    for _, reply in replies:
        served = chain.served_by(reply, model)
        assert served in ("local", "cloud"), reply.content()
        local = served == "local"
        content = reply.content()
        whole = (fake.text,) if local else (chain.anthropic.reply,)
        if content not in whole:
            # A stream cut by the stop: LiteLLM's mid-stream fallback has the cloud
            # continue the partial local answer, so the client still gets one whole answer.
            rest = chain.anthropic.continuation
            assert local and content.endswith(rest), content
            assert fake.text.startswith(content[: -len(rest)]), content
        if reply.headers["content-type"].startswith("text/event-stream"):
            assert reply.events()[-1] == "[DONE]"

    def cloud_share(group: list[Reply]) -> float:
        def by_cloud(reply: Reply) -> bool:
            return chain.served_by(reply, model) == "cloud"

        return sum(by_cloud(r) for r in group) / len(group)

    before = [r for started, r in replies if started < stopped_at - 0.1]
    after = [r for started, r in replies if started > stopped_at + 0.5]
    assert len(before) >= 8 and len(after) >= 8, (len(before), len(after))
    assert cloud_share(before) == 0.0
    assert cloud_share(after) == 1.0

    fake.start()
    restarted_at = time.monotonic()
    _wait_until_local(chain, model, _recovery_s(chain, model))
    assert time.monotonic() - restarted_at <= _recovery_s(chain, model)


def test_malformed_requests_through_the_chain_get_their_4xx_quickly(chain: Chain) -> None:
    """(5) Invalid JSON and wrong methods through the whole chain: each gets its 4xx within
    a second from the hop that owns the check, nothing reaches a model, and a
    well-behaved client is served throughout."""
    model = "llama-3-1-8b"
    good: list[Reply] = []
    stop = threading.Event()

    def well_behaved() -> None:
        for _ in range(200):
            if stop.is_set():
                return
            good.append(chain.chat(KEYS["bob"], model, marker="well-behaved"))
            time.sleep(0.02)

    sender = threading.Thread(target=well_behaved)
    sender.start()
    try:
        json_headers = {"Content-Type": "application/json"}
        key = KEYS["alice"]
        cases = {
            "truncated json": chain.send(
                "POST",
                "/v1/chat/completions",
                key=key,
                body=b'{"model": "llama-3-1-8b", "messages": [',
                headers=json_headers,
            ),
            "not json": chain.send(
                "POST", "/v1/chat/completions", key=key, body=b"model=x", headers=json_headers
            ),
            "get on chat": chain.send("GET", "/v1/chat/completions", key=key),
            "put on chat": chain.send("PUT", "/v1/chat/completions", key=key, body=b"{}"),
            "trace": chain.send("TRACE", "/v1/chat/completions", key=key),
        }
    finally:
        stop.set()
        sender.join(timeout=10)
    assert {name: reply.status for name, reply in cases.items()} == {
        "truncated json": 400,
        "not json": 400,
        "get on chat": 404,
        "put on chat": 404,
        "trace": 405,
    }
    assert all(reply.seconds < 1.0 for reply in cases.values()), {
        name: reply.seconds for name, reply in cases.items()
    }
    # Invalid JSON is judged by LiteLLM (the edge does not parse bodies) ...
    for name in ("truncated json", "not json"):
        assert cases[name].json()["error"]["type"] == "invalid_request_error", name
    # ... a method the route does not take by the edge's route check, TRACE by nginx
    # itself, before any key or upstream.
    for name in ("get on chat", "put on chat"):
        assert cases[name].json()["error"]["code"] == "not_found", name
    assert b"nginx" in cases["trace"].body
    # Only the well-behaved requests reached any backend.
    assert len(client_requests(chain.local[model])) == len(good)
    assert [f for f in chain.fakes() if f is not chain.local[model] and client_requests(f)] == []
    assert good and all(reply.status == 200 for reply in good)
    assert all(chain.served_by(reply, model) == "local" for reply in good)


INTERNAL_HEADER_PREFIXES = ("x-litellm-", "llm_provider-", "x-ratelimit-")


def test_litellm_internal_headers_stop_at_the_edge(chain: Chain) -> None:
    """The real LiteLLM adds its internal headers (the control: straight to it they are
    there, the internal backend URL among them); through the edge no answer, plain or
    streamed, carries one, while the answer itself is whole."""
    model = "qwen3-14b"
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "direct"}]}
    ).encode()
    conn = chain.litellm_connection()
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        direct = {k.lower(): v for k, v in response.getheaders()}
        response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert "x-litellm-model-api-base" in direct and "x-litellm-key-spend" in direct
    for stream in (False, True):
        reply = chain.chat(KEYS["alice"], model, stream=stream, marker=MARKER)
        assert reply.status == 200, reply.body[:300]
        assert chain.served_by(reply, model) == "local"
        leaked = [h for h in reply.headers if h.startswith(INTERNAL_HEADER_PREFIXES)]
        assert leaked == [], leaked


# Last in the module: it faults every local model, and a health-check round that was
# still waiting on a hung server when another recovered can hold that one out for one more
# interval after it answers again, which would spill into a later test.
def test_hung_wedged_and_both_down_through_the_edge(chain: Chain) -> None:
    """(3) At once, one model each, on the stack's own deadlines: qwen3-8b accepts and
    never answers, qwen3-14b sends a stream's headers and then nothing and answers no
    plain request (a wedged GPU), llama-3-1-8b is stopped and its cloud overloaded.
    Concurrent requests through the edge to the first two, streaming and plain from the
    first one on, all get the cloud's whole answer within the first-token deadline; once
    the servers are out of rotation requests go to the cloud at once; the third model's
    clients get one OpenAI-format 503 with Retry-After. All three are served locally
    again afterwards."""
    hung, wedged, down = "qwen3-8b", "qwen3-14b", "llama-3-1-8b"
    chain.local[hung].mode = "hang"
    chain.local[wedged].mode = "hang-after-headers"
    chain.local[down].stop()
    chain.openai.mode = "error"
    requests = [
        (model, name, stream)
        for model in (hung, wedged)
        for name in KEYS
        for stream in (True, False)
    ]
    with ThreadPoolExecutor(max_workers=len(requests) + 2) as pool:
        futures = [
            pool.submit(chain.chat, KEYS[name], model, stream=stream, marker=MARKER, timeout=30)
            for model, name, stream in requests
        ]
        unavailable = [
            pool.submit(chain.chat, KEYS["alice"], down, stream=s, marker=MARKER, timeout=30)
            for s in (False, True)
        ]
        replies = [future.result(timeout=40) for future in futures]
        refused = [future.result(timeout=40) for future in unavailable]

    for (model, _, stream), reply in zip(requests, replies, strict=True):
        assert reply.status == 200, reply.body[-300:]
        assert reply.content() == chain.anthropic.reply
        if stream:
            assert reply.events()[-1] == "[DONE]"
        # Never a hang: the fallback's answer comes within the first-token deadline.
        assert reply.seconds <= first_token_deadline(chain.config, model) + SLACK_S
    # Each waited one deadline at most (above): no request tried the hung server twice.
    assert len(client_requests(chain.local[hung])) >= 1
    for model in (hung, wedged):
        for stream in (False, True):
            fast = chain.chat(KEYS["bob"], model, stream=stream, marker=MARKER)
            assert fast.status == 200, fast.body[-300:]
            assert chain.served_by(fast, model) == "cloud"
            assert fast.seconds < 1.0, fast.seconds

    retry_after = str(chain.config.llm_gateway.router.cooldown_seconds)
    for reply in refused:
        assert reply.status == 503, reply.body[:300]
        assert reply.headers.get("retry-after") == retry_after
        error = reply.json()["error"]
        assert error["type"] == "service_unavailable" and down in error["message"]
        assert "127.0.0.1" not in reply.body.decode() and "Traceback" not in reply.body.decode()

    for fake in chain.local.values():
        fake.mode = "normal"
        fake.release.set()
    chain.local[down].start()
    chain.openai.mode = "normal"
    limit = max(_recovery_s(chain, m) for m in chain.local)
    started = time.monotonic()
    back: set[str] = set()
    for _ in range(300):
        for model in sorted(set(chain.local) - back):
            reply = chain.chat(KEYS["alice"], model, marker="recovery-probe")
            assert reply.status in (200, 503), reply.body[:300]
            if reply.status == 200 and chain.served_by(reply, model) == "local":
                back.add(model)
        if back == set(chain.local) or time.monotonic() - started > limit:
            break
        time.sleep(0.2)
    assert back == set(chain.local), f"not served locally within {limit} s: {back}"

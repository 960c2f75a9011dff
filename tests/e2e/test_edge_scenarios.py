"""Scenarios (1), (4) and (5) of issue 10 at the edge: the rendered nginx config under load,
key reloads and malformed traffic, in front of the recording fake upstream on loopback.

Each scenario is bounded in requests and seconds; the upstream records what got through,
so "nothing over a limit reached the gateway" is checked where it would matter.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.edge.nginx_conf import CLIENT_NAME_HEADER, ClientLimit
from tests.artifacts.edge.nginx_harness import EDGE_NAME
from tests.e2e.harness import Answer, EdgeChain, fake_upstream_chain, steady
from tests.fakes.upstream import FakeUpstream, stream_request_body

pytestmark = pytest.mark.e2e

KEYS = {
    "alice": "sk-e2e-AliceAliceAliceAlice0123456789ab",
    "bob": "sk-e2e-BobBobBobBobBobBobBob0123456789abc",
    "carol": "sk-e2e-CarolCarolCarolCarol0123456789ab",
}
GREEDY_RPS = 5
GREEDY_BURST = 5
CLIENTS = (
    ClientLimit(name="alice", requests_per_second=50, burst=20),
    ClientLimit(name="bob", requests_per_second=50, burst=20),
    ClientLimit(name="carol", requests_per_second=GREEDY_RPS, burst=GREEDY_BURST),
)
HEADER_TIMEOUT_S = 3
CHAT = json.dumps({"model": "qwen3-4b", "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[EdgeChain, FakeUpstream]]:
    # A short header timeout keeps the slow-client scenario brief; production uses 30 s.
    with fake_upstream_chain(
        tmp_path, CLIENTS, KEYS, client_header_timeout_seconds=HEADER_TIMEOUT_S
    ) as started:
        yield started


def _chat(chain: EdgeChain, client: str) -> Answer:
    return chain.request(
        "POST",
        "/v1/chat/completions",
        key=KEYS[client],
        body=CHAT,
        headers={"Content-Type": "application/json"},
        reuse=True,
    )


def test_steady_load_is_attributed_per_client_and_limited(
    edge: tuple[EdgeChain, FakeUpstream],
) -> None:
    """(1) 500 requests, three keys, steady 62.5/s: the two within their limits all succeed,
    the greedy one (12.5/s against 5/s) gets no more than rate x time + burst through."""
    chain, upstream = edge
    pattern = ("alice", "bob", "alice", "bob", "carol")
    senders = [pattern[i % len(pattern)] for i in range(500)]
    rate = 62.5
    started = time.monotonic()
    answers = steady(
        [lambda c=client: _chat(chain, c) for client in senders],
        rate=rate,
        workers=24,
        deadline_s=20,
    )
    elapsed = time.monotonic() - started

    errors = [a for a in answers if not isinstance(a, Answer)]
    assert not errors, errors[:3]
    statuses: dict[str, Counter[int]] = {name: Counter() for name in KEYS}
    for client, answer in zip(senders, answers, strict=True):
        assert isinstance(answer, Answer)
        statuses[client][answer.status] += 1
    assert statuses["alice"] == Counter({200: 200})
    assert statuses["bob"] == Counter({200: 200})
    greedy_ok = statuses["carol"][200]
    assert set(statuses["carol"]) == {200, 429}
    assert greedy_ok <= GREEDY_RPS * elapsed + GREEDY_BURST + 1, (greedy_ok, elapsed)
    assert greedy_ok >= GREEDY_RPS * (len(senders) / rate) * 0.9, greedy_ok

    # Attribution upstream: exactly the requests let through, each under its client's name.
    seen = Counter(r.headers[CLIENT_NAME_HEADER.lower()] for r in upstream.requests)
    assert seen == Counter(alice=200, bob=200, carol=greedy_ok)
    # Attribution in the edge's log: every request, refused or not, under its client's name.
    records = chain.wait_for_log(lambda rs: len(rs) >= len(senders))
    logged = Counter((r["client"], r["status"]) for r in records)
    assert logged == Counter(
        {
            ("alice", 200): 200,
            ("bob", 200): 200,
            ("carol", 200): greedy_ok,
            ("carol", 429): statuses["carol"][429],
        }
    )


def _read_stream(chain: EdgeChain, client: str, stream_id: str, events: int) -> list[int]:
    conn = chain.connection()
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=stream_request_body(events, 25, stream_id),
            headers={"Authorization": f"Bearer {KEYS[client]}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        assert response.status == 200, response.status
        received: list[int] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                received.append(json.loads(line[5:])["index"])
        return received
    finally:
        conn.close()


def test_key_reload_mid_run_drops_no_in_flight_request(
    edge: tuple[EdgeChain, FakeUpstream],
) -> None:
    """(4) Streams of alice and bob are in flight and alice keeps sending while the key set
    is replaced (bob removed, carol added): every stream completes, no request fails, and
    from the reload on bob is refused and carol let in."""
    chain, _ = edge
    chain.replace_keys({"alice": KEYS["alice"], "bob": KEYS["bob"]})
    events = 40  # about one second per stream
    results: dict[str, list[int] | BaseException] = {}

    def stream(client: str, index: int) -> None:
        name = f"{client}-{index}"
        try:
            results[name] = _read_stream(chain, client, f"reload-{name}", events)
        except Exception as error:
            results[name] = error

    threads = [
        threading.Thread(target=stream, args=(client, index))
        for client in ("alice", "bob")
        for index in range(3)
    ]
    for thread in threads:
        thread.start()
    stop = threading.Event()
    during: dict[bool, list[Answer | BaseException]] = {True: [], False: []}

    def keep_sending(reuse: bool) -> None:
        sent = during[reuse]
        while not stop.is_set() and len(sent) < 400:
            try:
                sent.append(
                    chain.request(
                        "POST", "/v1/chat/completions", key=KEYS["alice"], body=CHAT, reuse=reuse
                    )
                )
            except Exception as error:
                sent.append(error)
            time.sleep(0.01)

    # One sender on a keep-alive connection, one opening a new connection per request.
    senders = [threading.Thread(target=keep_sending, args=(reuse,)) for reuse in (True, False)]
    for sender in senders:
        sender.start()
    try:
        time.sleep(0.3)
        chain.replace_keys({"alice": KEYS["alice"], "carol": KEYS["carol"]})
        after_bob = chain.request("GET", "/v1/models", key=KEYS["bob"]).status
        after_carol = chain.request("GET", "/v1/models", key=KEYS["carol"]).status
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=10)
        for thread in threads:
            thread.join(timeout=15)

    assert sorted(results) == [f"{c}-{i}" for c in ("alice", "bob") for i in range(3)]
    for name, received in results.items():
        assert received == list(range(events)), (name, received)
    for reuse, answers in during.items():
        assert answers, f"the sender (keep-alive: {reuse}) sent nothing"
        failed = [a if not isinstance(a, Answer) else a.status for a in answers]
        assert all(a == 200 for a in failed), (reuse, [a for a in failed if a != 200][:5])
    # At most the keep-alive sender's one idle connection was closed under it by the reload.
    assert len(chain.stale_retries) <= 1, chain.stale_retries
    assert (after_bob, after_carol) == (401, 200)


def _tls_socket(chain: EdgeChain) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", chain.fixture.https_port), timeout=40)
    return chain.fixture.client_context().wrap_socket(raw, server_hostname=EDGE_NAME)


def _slowloris(chain: EdgeChain, closed_after: list[float]) -> None:
    """Send a request header a few bytes at a time, never finishing it."""
    tls = _tls_socket(chain)
    start = time.monotonic()
    try:
        tls.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge.test\r\n")
        tls.settimeout(0.5)
        for index in range(100):  # at most 50 s
            try:
                tls.sendall(f"X-Slow-{index}: a\r\n".encode())
                if tls.recv(1024) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    finally:
        closed_after.append(time.monotonic() - start)
        tls.close()


def test_malformed_requests_get_their_4xx_and_others_keep_being_served(
    edge: tuple[EdgeChain, FakeUpstream],
) -> None:
    """(5) Huge headers, TRACE, no key, an oversized body, slow headers and a slow body:
    each is refused with its status (fast ones within a second), none reaches the
    upstream, and a well-behaved client is served quickly throughout."""
    chain, upstream = edge
    before = len(upstream.requests)
    slow_closed: list[float] = []
    slow_headers = [
        threading.Thread(target=_slowloris, args=(chain, slow_closed)) for _ in range(10)
    ]
    for thread in slow_headers:
        thread.start()

    # A body that never completes: nginx buffers request bodies, so nothing goes upstream.
    slow_body = _tls_socket(chain)
    slow_body.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge.test\r\n"
        + f"Authorization: Bearer {KEYS['alice']}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"
    )
    try:
        cases = {
            "huge header": chain.request(
                "GET", "/v1/models", key=KEYS["alice"], headers={"X-Big": "a" * 64 * 1024}
            ),
            "trace": chain.request("TRACE", "/v1/models", key=KEYS["alice"]),
            "no key": chain.request("POST", "/v1/chat/completions", body=CHAT),
            "too large": chain.request(
                "POST", "/v1/embeddings", key=KEYS["alice"], body=b"x" * (11 * 1024 * 1024)
            ),
        }
        assert {name: a.status for name, a in cases.items()} == {
            "huge header": 400,
            "trace": 405,
            "no key": 401,
            "too large": 413,
        }
        assert all(a.seconds < 1 for a in cases.values()), {
            name: a.seconds for name, a in cases.items()
        }
        assert cases["no key"].json()["error"]["code"] == "invalid_api_key"
        assert cases["too large"].json()["error"]["code"] == "request_too_large"

        # A well-behaved client meanwhile: every request answered, quickly.
        served: list[Answer] = []
        deadline = time.monotonic() + HEADER_TIMEOUT_S + 10
        while any(t.is_alive() for t in slow_headers) and time.monotonic() < deadline:
            served.append(_chat(chain, "bob"))
            time.sleep(0.1)
        for thread in slow_headers:
            thread.join(timeout=10)
        slow_body.sendall(b'"model": "x"')  # still incomplete
        assert len(upstream.requests) - before == len(served)
    finally:
        slow_body.close()
    assert served and all(a.status == 200 for a in served)
    assert max(a.seconds for a in served) < 0.5, max(a.seconds for a in served)
    # nginx gives a request header client_header_timeout, then drops the connection.
    assert len(slow_closed) == 10
    assert all(HEADER_TIMEOUT_S - 1 < t < HEADER_TIMEOUT_S + 5 for t in slow_closed), slow_closed
    records = chain.wait_for_log(lambda rs: sum(r["status"] == 408 for r in rs) >= 10)
    assert sum(r["status"] == 408 for r in records) == 10

"""The rendered edge nginx.conf running in real nginx on loopback, in front of a fake HTTPS
upstream whose certificate nginx verifies against a test CA (as it will the internal CA)."""

from __future__ import annotations

import json
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.edge.nginx_conf import (
    CLIENT_NAME_HEADER,
    MOZILLA_INTERMEDIATE_CIPHERS,
    ClientLimit,
)
from tests.artifacts.edge.nginx_harness import (
    EDGE_NAME,
    INGRESS_NAME,
    EdgeFixture,
    NginxProcess,
    nginx_binary,
    running,
)
from tests.fakes.upstream import FakeUpstream, TestPki, stream_request_body

pytestmark = pytest.mark.live

ALICE_KEY = "sk-edge-AliceAliceAliceAlice0123456789ab"
RATE_KEY = "sk-edge-RateRateRateRateRate0123456789ab"
BOB_KEY = "sk-edge-BobBobBobBobBobBobBob0123456789ab"
ALICE_UPSTREAM_KEY = "sk-up-AliceUpstream0123456789abcdefghij"
RATE_UPSTREAM_KEY = "sk-up-RateUpstream0123456789abcdefghijk"
ALL_KEYS = (ALICE_KEY, RATE_KEY, BOB_KEY, ALICE_UPSTREAM_KEY, RATE_UPSTREAM_KEY)

RATE_RPS = 10
RATE_BURST = 5
ANON_RPS = 20
ANON_BURST = 10
MAX_BODY = 64 * 1024

CLIENTS = (
    ClientLimit(name="alice", requests_per_second=500, burst=200),
    ClientLimit(name="ratecheck", requests_per_second=RATE_RPS, burst=RATE_BURST),
    ClientLimit(name="bob", requests_per_second=50, burst=10),
)


@dataclass
class Edge:
    fixture: EdgeFixture
    upstream: FakeUpstream
    nginx: NginxProcess


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki()


@pytest.fixture(scope="module")
def upstream(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    directory = tmp_path_factory.mktemp("upstream")
    cert, key = pki.write_server_files(directory, "ingress", [INGRESS_NAME])
    with FakeUpstream(cert_file=cert, key_file=key) as server:
        yield server


@pytest.fixture(scope="module")
def edge(
    pki: TestPki, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    nginx_binary()
    fixture = EdgeFixture(tmp_path_factory.mktemp("edge"), pki, upstream.port)
    settings = fixture.settings(
        CLIENTS,
        anon_requests_per_second=ANON_RPS,
        anon_burst=ANON_BURST,
        max_body_size_bytes=MAX_BODY,
    )
    fixture.write(
        settings,
        {"alice": ALICE_KEY, "ratecheck": RATE_KEY},
        {"alice": ALICE_UPSTREAM_KEY, "ratecheck": RATE_UPSTREAM_KEY},
    )
    with running(fixture) as process:
        yield Edge(fixture, upstream, process)


def _get(
    edge: Edge, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = edge.fixture.connection()
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_valid_key_reaches_upstream_as_the_client_without_its_key(edge: Edge) -> None:
    before = len(edge.upstream.requests)
    conn = edge.fixture.connection()
    body = json.dumps({"model": "m", "messages": []}).encode()
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=body,
        headers={
            **_bearer(ALICE_KEY),
            "Content-Type": "application/json",
            CLIENT_NAME_HEADER: "mallory",
        },
    )
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()

    assert response.status == 200
    assert payload == {"ok": True, "path": "/v1/chat/completions"}
    assert response.getheader("Strict-Transport-Security", "").startswith("max-age=")
    seen = edge.upstream.requests[before:]
    assert len(seen) == 1
    request = seen[0]
    assert request.body == body
    assert request.headers[CLIENT_NAME_HEADER.lower()] == "alice"  # not the client's "mallory"
    assert request.headers["authorization"] == f"Bearer {ALICE_UPSTREAM_KEY}"
    assert request.headers["host"] == INGRESS_NAME
    assert request.headers["x-forwarded-proto"] == "https"
    assert all(ALICE_KEY not in value for value in request.headers.values())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _bearer("sk-edge-WrongWrongWrongWrong0123456789ab"),
        _bearer(ALICE_KEY + "x"),
        {"Authorization": ALICE_KEY},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        _bearer(BOB_KEY),  # configured client, but its key is not in the map yet
    ],
    ids=["missing", "unknown", "longer", "no-scheme", "basic", "not-in-map"],
)
def test_missing_or_unknown_key_gets_401_json_and_never_reaches_upstream(
    edge: Edge, headers: dict[str, str]
) -> None:
    before = len(edge.upstream.requests)
    status, response_headers, body = _get(edge, "/v1/models", headers)
    assert status == 401
    assert response_headers["www-authenticate"] == "Bearer"
    assert response_headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    assert len(edge.upstream.requests) == before


def test_healthz_is_answered_by_nginx_without_a_key(edge: Edge) -> None:
    before = len(edge.upstream.requests)
    status, _, body = _get(edge, "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert len(edge.upstream.requests) == before


def test_http2_is_offered(edge: Edge) -> None:
    context = edge.fixture.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", edge.fixture.https_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=EDGE_NAME) as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"


def test_client_rate_limit_lets_through_rate_times_window_plus_burst(edge: Edge) -> None:
    window = 2.0
    conn = edge.fixture.connection()
    allowed = limited = 0
    retry_after: set[str] = set()
    start = time.monotonic()
    try:
        while time.monotonic() - start < window and allowed + limited < 20_000:
            conn.request("GET", "/v1/models", headers=_bearer(RATE_KEY))
            response = conn.getresponse()
            body = response.read()
            if response.status == 200:
                allowed += 1
            else:
                assert response.status == 429
                assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
                retry_after.add(response.getheader("Retry-After", ""))
                limited += 1
    finally:
        conn.close()
    expected = RATE_RPS * window + RATE_BURST
    assert abs(allowed - expected) <= 0.1 * expected, (allowed, limited)
    assert limited > 0
    assert retry_after == {"1"}


def test_requests_without_a_key_are_rate_limited_per_source_address(edge: Edge) -> None:
    statuses: list[int] = []
    retry_after = None
    for _ in range(ANON_BURST * 4):
        conn = edge.fixture.connection(source_address=("127.0.0.7", 0))
        conn.request("GET", "/v1/models")
        response = conn.getresponse()
        response.read()
        conn.close()
        statuses.append(response.status)
        if response.status == 429:
            retry_after = response.getheader("Retry-After")
    assert set(statuses) == {401, 429}
    assert statuses[0] == 401
    assert retry_after == "1"
    # Another source address has its own allowance.
    conn = edge.fixture.connection(source_address=("127.0.0.8", 0))
    conn.request("GET", "/v1/models")
    status = conn.getresponse().status
    conn.close()
    assert status == 401


def test_server_sent_events_arrive_event_by_event(edge: Edge) -> None:
    events, stream_id = 20, "sse-live"
    conn = edge.fixture.connection()
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=stream_request_body(events, 25, stream_id),
        headers={
            **_bearer(ALICE_KEY),
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "Accept-Encoding": "gzip",
        },
    )
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    assert response.getheader("Content-Encoding") is None
    received: list[tuple[float, int]] = []
    deadline = time.monotonic() + 10
    while len(received) < events and time.monotonic() < deadline:
        line = response.readline()
        if not line:
            break
        if line.startswith(b"data:"):
            received.append((time.monotonic(), json.loads(line[5:])["index"]))
    conn.close()
    # The upstream notes each send after writing it, so the client may read the last
    # event a moment before its timestamp is stored: wait for it, bounded.
    settle = time.monotonic() + 2
    while len(edge.upstream.stream_sent_at(stream_id)) < events and time.monotonic() < settle:
        time.sleep(0.01)
    sent = edge.upstream.stream_sent_at(stream_id)

    assert [index for _, index in received] == list(range(events))
    assert len(sent) == events
    latencies = sorted(at - sent[index] for at, index in received)
    first_latency = received[0][0] - sent[0]
    assert first_latency < 0.05, first_latency
    assert received[0][0] < sent[-1]  # the first event did not wait for the end of the stream
    assert latencies[int(events * 0.9) - 1] < 0.05, latencies


def test_body_over_the_limit_gets_413_json(edge: Edge) -> None:
    before = len(edge.upstream.requests)
    conn = edge.fixture.connection()
    conn.request("POST", "/v1/embeddings", body=b"x" * (MAX_BODY + 1), headers=_bearer(ALICE_KEY))
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"
    assert len(edge.upstream.requests) == before

    conn = edge.fixture.connection()
    conn.request("POST", "/v1/embeddings", body=b"x" * MAX_BODY, headers=_bearer(ALICE_KEY))
    status = conn.getresponse().status
    conn.close()
    assert status == 200
    assert len(edge.upstream.requests[before:][-1].body) == MAX_BODY


def _handshake(port: int, version: ssl.TLSVersion) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer old protocols at all
    with warnings.catch_warnings():
        # Offering TLS 1.0/1.1 is the point of the test; Python flags the enum as deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context.wrap_socket(raw, server_hostname=EDGE_NAME)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_before_1_2_is_refused_by_the_server(edge: Edge, version: ssl.TLSVersion) -> None:
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(edge.fixture.https_port, version).close()
    # An alert from the server, not a client that could not even offer the version.
    assert "ALERT_PROTOCOL_VERSION" in str(refused.value) or "PROTOCOL_VERSION" in (
        refused.value.reason or ""
    ), refused.value


def test_tls_1_2_negotiates_an_intermediate_cipher(edge: Edge) -> None:
    tls = _handshake(edge.fixture.https_port, ssl.TLSVersion.TLSv1_2)
    try:
        assert tls.version() == "TLSv1.2"
        cipher = tls.cipher()
        assert cipher is not None
        assert cipher[0] in MOZILLA_INTERMEDIATE_CIPHERS.split(":")
    finally:
        tls.close()


def test_plain_http_serves_acme_challenges_and_redirects_the_rest(edge: Edge) -> None:
    import http.client

    token = edge.fixture.root / "www" / ".well-known" / "acme-challenge" / "tok-123"
    token.write_text("tok-123.thumbprint")
    conn = http.client.HTTPConnection("127.0.0.1", edge.fixture.http_port, timeout=5)
    conn.request("GET", "/.well-known/acme-challenge/tok-123")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"tok-123.thumbprint")
    conn.request("GET", "/v1/models?x=1", headers=_bearer(ALICE_KEY))
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 301
    assert response.getheader("Location") == (
        f"https://{EDGE_NAME}:{edge.fixture.https_port}/v1/models?x=1"
    )


def test_access_log_is_json_names_the_client_and_holds_no_key(edge: Edge) -> None:
    marker = {"User-Agent": "log-check"}
    assert _get(edge, "/v1/models", {**_bearer(ALICE_KEY), **marker})[0] == 200
    wrong = _bearer("sk-edge-NotAKeyNotAKey0123456789abcd")
    assert _get(edge, "/v1/models", {**wrong, **marker})[0] == 401
    log = Path(edge.fixture.settings(CLIENTS).access_log_path)
    deadline = time.monotonic() + 2
    records: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in log.read_text().splitlines()]
        if sum(r["user_agent"] == "log-check" for r in records) >= 2:
            break
        time.sleep(0.05)
    text = log.read_text()
    for key in (*ALL_KEYS, "NotAKeyNotAKey"):
        assert key not in text
    checks = [r for r in records if r["user_agent"] == "log-check"]
    assert [(r["client"], r["status"]) for r in checks[-2:]] == [("alice", 200), ("", 401)]
    assert {r["path"] for r in checks} == {"/v1/models"}
    assert isinstance(checks[-2]["request_time"], float | int)
    assert checks[-2]["upstream_response_time"] not in ("", "-")


def test_reload_applies_a_changed_key_map(
    pki: TestPki, upstream: FakeUpstream, tmp_path: Path
) -> None:
    fixture = EdgeFixture(tmp_path, pki, upstream.port)
    settings = fixture.settings(CLIENTS, upstream_keys=False)
    fixture.write(settings, {"alice": ALICE_KEY})
    rotated = "sk-edge-AliceRotatedRotated0123456789abc"
    with running(fixture) as nginx:
        conn = fixture.connection()
        conn.request("GET", "/v1/models", headers=_bearer(ALICE_KEY))
        status = conn.getresponse().status
        conn.close()
        assert status == 200
        # Without an upstream key map, no Authorization header goes upstream at all.
        assert "authorization" not in upstream.requests[-1].headers

        fixture.write_keys(settings, {"alice": rotated, "bob": BOB_KEY})
        nginx.reload()  # returns once only workers with the new key map are left
        conn = fixture.connection()
        conn.request("GET", "/v1/models", headers=_bearer(ALICE_KEY))
        status = conn.getresponse().status
        conn.close()
        assert status == 401
        for key, client in ((rotated, "alice"), (BOB_KEY, "bob")):
            conn = fixture.connection()
            conn.request("GET", "/v1/models", headers=_bearer(key))
            status = conn.getresponse().status
            conn.close()
            assert status == 200, client
            assert upstream.requests[-1].headers[CLIENT_NAME_HEADER.lower()] == client


def _stream_through(fixture: EdgeFixture, key: str, stream_id: str, events: int) -> list[int]:
    """One streamed completion through the edge: the indexes of the events it delivered
    (all of them only if nothing dropped the stream)."""
    conn = fixture.connection()
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=stream_request_body(events, 20, stream_id),
            headers={**_bearer(key), "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        assert response.status == 200, response.status
        received = []
        for _ in range(events * 4):  # bounded: each read is one line
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                received.append(int(json.loads(line[5:])["index"]))
        return received
    finally:
        conn.close()


def test_a_client_change_reloads_mid_traffic_and_drops_nothing(
    pki: TestPki, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Clients reach nginx through the included client files (written from SSM on the
    instance): adding a client and re-limiting another is a graceful reload, during which
    the streams and requests in flight finish whole, and the new limits apply after."""
    fixture = EdgeFixture(tmp_path, pki, upstream.port)
    slow = ClientLimit(name="bob", requests_per_second=1, burst=0)
    settings = fixture.settings((CLIENTS[0], slow), upstream_keys=False)
    carol_key = "sk-edge-CarolCarolCarolCarol0123456789a"
    keys = {"alice": ALICE_KEY, "bob": BOB_KEY, "carol": carol_key}
    fixture.write(settings, keys)
    conf_before = fixture.conf.read_text()
    events = 25
    with running(fixture) as nginx:
        # Not yet a client: carol's key maps to a name the client files do not let in.
        assert _get_with(fixture, carol_key) == 401
        assert [_get_with(fixture, BOB_KEY) for _ in range(3)].count(429) >= 2
        with ThreadPoolExecutor(max_workers=6) as pool:
            streams = [
                pool.submit(_stream_through, fixture, ALICE_KEY, f"reload-{i}", events)
                for i in range(4)
            ]
            time.sleep(0.15)  # every stream has started and is mid-answer
            fixture.write_clients(
                settings,
                (
                    CLIENTS[0],
                    ClientLimit(name="bob", requests_per_second=100, burst=20),
                    ClientLimit(name="carol", requests_per_second=100, burst=20),
                ),
            )
            nginx.reload()
            plain = [pool.submit(_get_with, fixture, ALICE_KEY) for _ in range(20)]
            delivered = [future.result(timeout=30) for future in streams]
            statuses = [future.result(timeout=30) for future in plain]
        assert delivered == [list(range(events))] * 4, delivered
        assert statuses == [200] * 20
        # The added client is in, the re-limited one is no longer held to 1 r/s.
        assert _get_with(fixture, carol_key) == 200
        assert [_get_with(fixture, BOB_KEY) for _ in range(5)] == [200] * 5
    # The change touched only the client files: nginx.conf (the user-data's) is the same.
    assert fixture.conf.read_text() == conf_before


def _get_with(fixture: EdgeFixture, key: str) -> int:
    conn = fixture.connection()
    try:
        conn.request("GET", "/v1/models", headers=_bearer(key))
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_upstream_certificate_from_another_ca_is_refused(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    fixture = EdgeFixture(tmp_path, TestPki("some other CA"), upstream.port)
    settings = fixture.settings(CLIENTS, upstream_keys=False)
    fixture.write(settings, {"alice": ALICE_KEY})
    before = len(upstream.requests)
    with running(fixture):
        conn = fixture.connection()
        conn.request("GET", "/v1/models", headers=_bearer(ALICE_KEY))
        response = conn.getresponse()
        body = response.read()
        conn.close()
    assert response.status == 502
    assert json.loads(body)["error"]["code"] == "bad_gateway"
    assert len(upstream.requests) == before

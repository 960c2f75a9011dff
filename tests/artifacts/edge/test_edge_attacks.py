"""The rendered edge attacked from outside: one real nginx on loopback in front of the
recording fake upstream, an attacker holding one client's valid edge key.

Every attack class is a table; a new route, encoding, header or query is one line:
- `ADMIN_TARGETS` x `ENCODINGS` x `METHODS` x `VERSIONS` (HTTP/1.0 without Host, 1.1, 2):
  refused (404, or 400 where nginx itself refuses the target) and never upstream;
- `ALLOWED_ROUTE_LOOKALIKES`: targets that only look like an allowed route, refused too;
- `SMUGGLED_HEADERS`: credential and control headers, each dropped on the way up, while
  the upstream only ever sees the allowlisted and the edge's own headers;
- `QUERY_CREDENTIALS`: refused with 400 before any log line or the upstream holds them;
- `KEY_VARIANTS`: the key in another case or shape is no key;
- response headers: LiteLLM's internal ones (the fake sends them) never reach a client;
- the positive control: every allowed route reaches the upstream on every HTTP version,
  as its exact path, and streams event by event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.edge.api_surface import ALLOWED_QUERY, API_ROUTES, forwarded_headers
from components.edge.nginx_conf import CLIENT_NAME_HEADER, ClientLimit
from tests.artifacts.edge.nginx_harness import EDGE_NAME, INGRESS_NAME, EdgeFixture, running
from tests.artifacts.edge.wire_clients import VERSIONS, Answer, EdgeClient, Wire
from tests.fakes.upstream import INTERNAL_HEADERS, FakeUpstream, TestPki, stream_request_body

pytestmark = pytest.mark.live

KEY = "sk-edge-Attacker0attacker0Attacker0123456"
LIMITED_KEY = "sk-edge-LimitedLimitedLimited0123456789ab"
UPSTREAM_KEY = "sk-up-Attacker0Upstream0123456789abcdefg"
CLIENTS = (
    ClientLimit(name="attacker", requests_per_second=100_000, burst=100_000),
    ClientLimit(name="limited", requests_per_second=1, burst=0),
)

# LiteLLM 1.83.14 routes that are not the client API (admin, UI, login/SSO, MCP, discovery,
# pass-through, health, files), plus the edge's own internal location; one line each.
ADMIN_TARGETS = (
    "/key/generate",
    "/key/list",
    "/key/update",
    "/user/new",
    "/team/new",
    "/model/new",
    "/config/update",
    "/config/yaml",
    "/spend/logs",
    "/global/spend",
    "/ui",
    "/login",
    "/sso/key/generate",
    # MCP: only POST /mcp/ is a client route (the fixture's edge lists it); every other
    # form of LiteLLM's MCP server, its REST tools and management stay out.
    "/mcp",
    "/mcp/docs",
    "/docs/mcp",
    "/toolset/docs/mcp",
    "/mcp/sse",
    "/sse",
    "/mcp-rest/tools/list",
    "/mcp-rest/tools/call",
    "/v1/mcp/server",
    "/.well-known/oauth-authorization-server/docs",
    "/routes",
    "/openapi.json",
    "/docs",
    "/metrics",
    "/health",
    "/anthropic/v1/messages",
    "/vertex_ai/v1/projects/p/locations/l/publishers/google/models/m:generateContent",
    "/v1beta/models/gemini:generateContent",
    "/chat/completions",
    "/v1/files",
    "/v1/responses/resp_0123",
    "/v1/models/qwen3-8b",
    "/_edge_auth",
)

# How an outsider dresses a target so one parser reads it differently from another.
ENCODINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda path: path,
    "double-slash": lambda path: "/" + path,
    "dot-segments": lambda path: "/v1/chat/completions/../.." + path,
    "encoded-dots": lambda path: "/v1/chat/completions/%2e%2e/%2e%2e" + path,
    "encoded-letter": lambda path: f"/%{ord(path[1]):02x}{path[2:]}",
    "encoded-slashes": lambda path: (
        "/v1/chat/completions%2f..%2f..%2f" + path[1:].replace("/", "%2f")
    ),
    "upper-case": lambda path: path.upper(),
    "absolute-uri": lambda path: f"https://{EDGE_NAME}{path}",
    "semicolon": lambda path: "/v1/chat/completions;" + path,
    "allowed-prefix": lambda path: "/v1/models" + path,
}
METHODS = ("GET", "POST")

# Targets that resemble an allowed route but are not its exact raw form.
ALLOWED_ROUTE_LOOKALIKES = (
    ("POST", "//v1/chat/completions"),
    ("POST", "/v1//chat/completions"),
    ("POST", "/v1/chat/completions/"),
    ("POST", "/v1/./chat/completions"),
    ("POST", "/v1/x/../chat/completions"),
    ("POST", "/V1/chat/completions"),
    ("POST", "/v1/chat/Completions"),
    ("POST", "/v1/chat%2fcompletions"),
    ("POST", "/v1/chat/%63ompletions"),
    ("POST", "/v1/chat/completions;x=1"),
    ("POST", "/v1/chat/completions%3b"),
    ("POST", "/v1/chat/completions%00"),
    ("POST", "/v1/chat/completions#frag"),
    ("POST", "/v1/messages/count_tokens"),
    ("GET", "/v1/chat/completions"),
    ("POST", "/v1/models"),
    ("HEAD", "/v1/models"),
    ("PUT", "/v1/chat/completions"),
    ("DELETE", "/v1/chat/completions"),
    ("PATCH", "/v1/embeddings"),
    ("OPTIONS", "/v1/chat/completions"),
    ("GET", "/mcp/"),
    ("DELETE", "/mcp/"),
    ("PUT", "/mcp/"),
    ("POST", "//mcp/"),
    ("POST", "/mcp//"),
    ("POST", "/MCP/"),
    ("POST", "/mcp/./"),
    ("POST", "/mcp/%2e"),
    ("POST", "/mcp/;x=1"),
    ("POST", "/mcp%2f"),
)

# Headers a client must never get to the gateway: credentials LiteLLM reads
# (proxy/auth/user_api_key_auth.py `get_api_key` and its callers), its control headers, and
# headers that rewrite the request's origin, path or method in some framework.
SMUGGLED_HEADERS = (
    ("x-litellm-api-key", "Bearer sk-master-guess-000000000000"),
    ("X-LiteLLM-API-Key", "Bearer sk-master-guess-000000000001"),
    ("x-api-key", "sk-smuggled-x-api-key-0000000000"),
    ("api-key", "sk-smuggled-azure-key-000000000"),
    ("x-goog-api-key", "sk-smuggled-goog-key-000000000"),
    ("Ocp-Apim-Subscription-Key", "sk-smuggled-apim-key-00000000"),
    ("Proxy-Authorization", "Basic c211Z2dsZWQ6c2VjcmV0"),
    ("Cookie", "token=sk-smuggled-cookie-0000000000"),
    ("x-litellm-tags", "smuggled-victim-tag"),
    ("x-litellm-end-user-id", "smuggled-victim-user"),
    ("x-litellm-spend-logs-metadata", '{"smuggled":"victim"}'),
    ("x-litellm-timeout", "3601"),
    ("x-litellm-stream-timeout", "3602"),
    ("x-litellm-num-retries", "57"),
    ("x-litellm-disable-fallbacks", "smuggled-true"),
    ("Forwarded", "for=10.9.9.9;host=smuggled.internal"),
    ("X-Forwarded-Host", "smuggled.internal"),
    ("X-Forwarded-Port", "4999"),
    ("X-Forwarded-Prefix", "/smuggled-prefix"),
    # MCP server selection and per-server credentials (litellm 1.83.14
    # _experimental/mcp_server/auth/user_api_key_auth_mcp.py `process_mcp_request`).
    ("x-mcp-servers", "docs,github"),
    ("x-mcp-access-groups", "smuggled-admins"),
    ("x-mcp-docs-authorization", "Bearer smuggled-mcp-credential"),
    ("x-mcp-auth", "smuggled-mcp-auth"),
    ("X-Original-URL", "/smuggled/key/generate"),
    ("X-Rewrite-URL", "/smuggled/key/list"),
    ("X-HTTP-Method-Override", "SMUGGLED-DELETE"),
    ("OpenAI-Organization", "org-smuggled"),
    ("OpenAI-Project", "proj-smuggled"),
    ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("Accept-Encoding", "smuggled-gzip"),
    ("X-Client-Name", "smuggled-mallory"),
    ("X-Forwarded-For", "10.9.9.8"),
    ("X-Real-IP", "10.9.9.7"),
    ("X-Request-Id", "smuggled-request-id"),
    ("X-Forwarded-Proto", "smuggled-http"),
)
EDGE_SET_HEADERS = (
    "host",
    "authorization",
    CLIENT_NAME_HEADER.lower(),
    "x-request-id",
    "x-real-ip",
    "x-forwarded-for",
    "x-forwarded-proto",
    "content-length",
)
UPSTREAM_MAY_SEE = {
    *EDGE_SET_HEADERS,
    *(name.lower() for name in forwarded_headers(tuple(API_ROUTES.values()))),
}

QUERY_SECRET = "sk-query-secret-0123456789"
QUERY_CREDENTIALS = (
    f"key={QUERY_SECRET}",
    f"api_key={QUERY_SECRET}",
    f"api-key={QUERY_SECRET}",
    f"x-api-key={QUERY_SECRET}",
    f"token={QUERY_SECRET}",
    f"access_token={QUERY_SECRET}",
    f"authorization=Bearer%20{QUERY_SECRET}",
    f"KEY={QUERY_SECRET}",
    f"%6bey={QUERY_SECRET}",
    f"beta=true&key={QUERY_SECRET}",
    f"key={QUERY_SECRET}&beta=true",
    f"beta=true;key={QUERY_SECRET}",
    f"beta={QUERY_SECRET}",
    QUERY_SECRET,
)

KEY_VARIANTS = {
    "swapped-case": f"Bearer {KEY.swapcase()}",
    "upper-case": f"Bearer {KEY.upper()}",
    "lower-case": f"Bearer {KEY.lower()}",
    "two-spaces": f"Bearer  {KEY}",
    "prefix": f"Bearer {KEY[:-1]}",
    "regex-wildcard": f"Bearer {KEY[:-2]}.*",
    "two-keys": f"Bearer {KEY}, Bearer {KEY}",
}

JSON_BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()


@dataclass
class Edge:
    fixture: EdgeFixture
    upstream: FakeUpstream
    client: EdgeClient
    pki: TestPki


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    pki = TestPki()
    directory = tmp_path_factory.mktemp("attack-upstream")
    cert, key = pki.write_server_files(directory, "ingress", [INGRESS_NAME])
    with FakeUpstream(cert_file=cert, key_file=key) as upstream:
        fixture = EdgeFixture(tmp_path_factory.mktemp("attack-edge"), pki, upstream.port)
        # Requests without a valid key have their own per-address limit (test_nginx_live.py).
        settings = fixture.settings(CLIENTS, anon_requests_per_second=1000, anon_burst=1000)
        fixture.write(
            settings,
            {"attacker": KEY, "limited": LIMITED_KEY},
            {"attacker": UPSTREAM_KEY, "limited": UPSTREAM_KEY},
        )
        with running(fixture):
            client = EdgeClient(fixture.https_port, EDGE_NAME, pki.ca_pem)
            try:
                yield Edge(fixture, upstream, client, pki)
            finally:
                client.close()


def _wire(
    method: str, target: str, *, authorization: str = f"Bearer {KEY}", extra: tuple = ()
) -> Wire:
    headers: tuple[tuple[str, str], ...] = (("Authorization", authorization), *extra)
    if method == "POST":
        return Wire(method, target, (*headers, ("Content-Type", "application/json")), JSON_BODY)
    return Wire(method, target, headers)


def _refused(attempt: Wire, answer: Answer) -> bool:
    """A 404 that is the edge's own JSON, or a 400 (nginx refusing the target itself)."""
    if answer.status == 404 and attempt.method == "HEAD":
        return answer.headers.get("content-type", "").startswith("application/json")
    if answer.status == 404:
        return answer.error_code() == "not_found"
    return answer.status == 400


def _assert_all_refused(edge: Edge, version: str, attempts: list[Wire]) -> None:
    """Every attempt gets the edge's refusal and none reaches the upstream."""
    before = len(edge.upstream.requests)
    answers = edge.client.send(version, attempts)
    through = [
        (a.method, a.target, answer.status)
        for a, answer in zip(attempts, answers, strict=True)
        if not _refused(a, answer)
    ]
    assert not through
    assert edge.upstream.requests[before:] == []


def _logs(edge: Edge) -> str:
    settings = edge.fixture.settings(CLIENTS)
    return "".join(
        Path(path).read_text() if Path(path).exists() else ""
        for path in (settings.access_log_path, settings.error_log_path)
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_every_allowed_route_reaches_the_upstream_as_its_exact_path(
    edge: Edge, version: str
) -> None:
    """The control for every attack below: the same client, key and HTTP version get
    through on the allowed routes."""
    before = len(edge.upstream.requests)
    routes = list(API_ROUTES.values())
    answers = edge.client.send(version, [_wire(r.method, r.path) for r in routes])
    assert [a.status for a in answers] == [200] * len(routes), [a.body for a in answers]
    seen = edge.upstream.requests[before:]
    assert [(r.method, r.path) for r in seen] == [(r.method, r.path) for r in routes]
    assert {r.headers[CLIENT_NAME_HEADER.lower()] for r in seen} == {"attacker"}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("version", VERSIONS)
def test_admin_routes_are_refused_without_reaching_the_upstream(
    edge: Edge, version: str, encoding: str
) -> None:
    attempts = [
        _wire(method, ENCODINGS[encoding](path)) for path in ADMIN_TARGETS for method in METHODS
    ]
    _assert_all_refused(edge, version, attempts)


@pytest.mark.parametrize("version", VERSIONS)
def test_lookalikes_of_allowed_routes_are_refused(edge: Edge, version: str) -> None:
    attempts = [_wire(method, target) for method, target in ALLOWED_ROUTE_LOOKALIKES]
    _assert_all_refused(edge, version, attempts)


@pytest.mark.parametrize("version", VERSIONS)
def test_credential_and_control_headers_never_reach_the_upstream(edge: Edge, version: str) -> None:
    before = len(edge.upstream.requests)
    attempts = [
        _wire(
            "POST",
            "/v1/chat/completions",
            extra=((name, value), ("User-Agent", f"smuggle-{version}-{index}")),
        )
        for index, (name, value) in enumerate(SMUGGLED_HEADERS)
    ]
    answers = edge.client.send(version, attempts)
    assert [a.status for a in answers] == [200] * len(attempts)
    seen = {r.headers.get("user-agent"): r for r in edge.upstream.requests[before:]}
    for index, (name, value) in enumerate(SMUGGLED_HEADERS):
        request = seen[f"smuggle-{version}-{index}"]
        assert set(request.headers) <= UPSTREAM_MAY_SEE, (name, sorted(request.headers))
        # Dropped, or (a header the edge sets itself) replaced by the edge's own value.
        assert request.headers.get(name.lower()) != value, (name, request.headers)
        assert request.headers["host"] == INGRESS_NAME
        assert request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
        assert request.headers[CLIENT_NAME_HEADER.lower()] == "attacker"
        assert request.headers["x-forwarded-for"] == "127.0.0.1"
        assert request.headers["x-forwarded-proto"] == "https"


@pytest.mark.parametrize("version", VERSIONS)
def test_query_credentials_get_400_before_any_log_line_or_the_upstream_holds_them(
    edge: Edge, version: str
) -> None:
    before = len(edge.upstream.requests)
    attempts = [
        _wire(route.method, f"{route.path}?{query}", authorization=authorization)
        for route in API_ROUTES.values()
        for query in QUERY_CREDENTIALS
        for authorization in (f"Bearer {KEY}", f"Bearer {QUERY_SECRET}")
    ]
    answers = edge.client.send(version, attempts)
    wrong = [
        (a.method, a.target, answer.status)
        for a, answer in zip(attempts, answers, strict=True)
        if (answer.status, answer.error_code()) != (400, "query_not_allowed")
    ]
    assert not wrong
    assert edge.upstream.requests[before:] == []
    assert QUERY_SECRET not in _logs(edge)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_anthropic_beta_query_is_the_one_accepted(edge: Edge, version: str) -> None:
    before = len(edge.upstream.requests)
    [answer] = edge.client.send(version, [_wire("POST", f"/v1/messages?{ALLOWED_QUERY}")])
    assert answer.status == 200
    [request] = edge.upstream.requests[before:]
    assert request.path == f"/v1/messages?{ALLOWED_QUERY}"


@pytest.mark.parametrize("variant", KEY_VARIANTS)
def test_a_key_in_another_case_or_shape_is_no_key(edge: Edge, variant: str) -> None:
    before = len(edge.upstream.requests)
    [answer] = edge.client.send(
        "HTTP/1.1", [_wire("GET", "/v1/models", authorization=KEY_VARIANTS[variant])]
    )
    assert (answer.status, answer.error_code()) == (401, "invalid_api_key")
    assert edge.upstream.requests[before:] == []


@pytest.mark.parametrize("version", VERSIONS)
def test_internal_response_headers_never_reach_the_client(edge: Edge, version: str) -> None:
    routes = list(API_ROUTES.values())
    answers = edge.client.send(version, [_wire(r.method, r.path) for r in routes])
    assert [a.status for a in answers] == [200] * len(routes)
    for answer in answers:
        leaked = set(answer.headers) & set(INTERNAL_HEADERS)
        assert not leaked, leaked
        assert not any(value in answer.headers.values() for value in INTERNAL_HEADERS.values())


def test_the_fake_upstream_does_send_the_internal_headers(edge: Edge) -> None:
    """Control for the test above: without the edge, a client would see them."""
    client = EdgeClient(edge.upstream.port, INGRESS_NAME, edge.pki.ca_pem)
    try:
        [answer] = client.send("HTTP/1.1", [_wire("GET", "/v1/models")])
    finally:
        client.close()
    assert set(INTERNAL_HEADERS) <= set(answer.headers)


@pytest.mark.parametrize("route", [n for n, r in API_ROUTES.items() if r.method == "POST"])
def test_allowed_routes_stream_event_by_event_without_internal_headers(
    edge: Edge, route: str
) -> None:
    events, stream_id = 12, f"attack-suite-{route}"
    conn = edge.fixture.connection()
    try:
        conn.request(
            "POST",
            API_ROUTES[route].path,  # type: ignore[index]
            body=stream_request_body(events, 25, stream_id),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        assert response.status == 200
        assert not {name.lower() for name, _ in response.getheaders()} & set(INTERNAL_HEADERS)
        arrived: list[float] = []
        deadline = time.monotonic() + 10
        while len(arrived) < events and time.monotonic() < deadline:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                arrived.append(time.monotonic())
    finally:
        conn.close()
    sent = edge.upstream.stream_sent_at(stream_id)
    assert len(arrived) == events
    # Each event arrived before the upstream had written the last one: not buffered.
    assert arrived[0] < sent[-1]
    assert max(at - sent[i] for i, at in enumerate(arrived[:-1])) < 0.05


def test_rate_limit_rejections_are_logged_without_the_query(edge: Edge) -> None:
    target = f"/v1/messages?{ALLOWED_QUERY}"
    answers = edge.client.send(
        "HTTP/1.1", [_wire("POST", target, authorization=f"Bearer {LIMITED_KEY}")] * 4
    )
    assert 429 in {a.status for a in answers}
    settings = edge.fixture.settings(CLIENTS)
    deadline = time.monotonic() + 2
    records: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        lines = Path(settings.access_log_path).read_text().splitlines()
        records = [json.loads(line) for line in lines]
        if any(r["client"] == "limited" and r["status"] == 429 for r in records):
            break
        time.sleep(0.05)
    limited = [r for r in records if r["client"] == "limited" and r["status"] == 429]
    assert limited and {r["path"] for r in limited} == {"/v1/messages"}
    assert ALLOWED_QUERY not in _logs(edge)

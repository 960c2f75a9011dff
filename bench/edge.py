"""Benchmarks (1) and (2): the generated edge nginx config against direct access and
reference nginx configs, all on loopback in front of the same upstream.

(1) first event of a server-sent event stream: time from the upstream flushing it to the
    client reading it, direct vs. through the generated config vs. a default `proxy_pass`;
(2) keep-alive requests per second (wrk) through the generated config (auth and rate
    limiting on, limits high) vs. a minimal TLS proxy, both to a static nginx upstream.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.nginx_refs import default_proxy_conf, minimal_tls_proxy_conf, static_upstream_conf
from bench.stats import median
from components.edge.nginx_conf import ClientLimit
from tests.artifacts.edge.nginx_harness import INGRESS_NAME, EdgeFixture, running
from tests.fakes.upstream import FakeUpstream, TestPki, stream_request_body

BENCH_KEY = "sk-bench-BenchBenchBench0123456789abcdef"
# Highest limits the renderer accepts: the benchmark measures the cost of the checks, not 429s.
HIGH_LIMIT = ClientLimit(name="bench", requests_per_second=100_000, burst=100_000)
FIRST_EVENT_TARGET_MS = 2.0
THROUGHPUT_TARGET_RATIO = 0.9

Connect = Callable[[], http.client.HTTPSConnection]


def nodelay(upstream: FakeUpstream) -> FakeUpstream:
    """Set TCP_NODELAY on the fake upstream's connections (adapter over its private server).

    Without it, the kernel holds each small event written after the headers until the
    client's delayed ACK (about 40 ms), in every variant alike: vLLM (uvicorn) sets
    TCP_NODELAY, so the fake must too for the figures to mean anything.
    """
    server = upstream._server
    accept = server.get_request

    def get_request() -> tuple[socket.socket, object]:
        sock, address = accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    server.get_request = get_request  # type: ignore[method-assign]
    return upstream


def _generated_edge(root: Path, pki: TestPki, upstream_port: int) -> EdgeFixture:
    fixture = EdgeFixture(root, pki, upstream_port)
    settings = fixture.settings((HIGH_LIMIT,), upstream_keys=False)
    fixture.write(settings, {HIGH_LIMIT.name: BENCH_KEY})
    return fixture


def _reference(
    root: Path, pki: TestPki, upstream_port: int, render: Callable[..., str]
) -> EdgeFixture:
    fixture = EdgeFixture(root, pki, upstream_port)
    fixture.conf.write_text(render(fixture, upstream_port))
    return fixture


def _first_event_delay(
    connect: http.client.HTTPSConnection, upstream: FakeUpstream, events: int, interval_ms: int
) -> float:
    """Seconds from the upstream flushing the first event to this client reading it."""
    stream_id = uuid.uuid4().hex
    connect.request(
        "POST",
        "/v1/chat/completions",
        body=stream_request_body(events, interval_ms, stream_id),
        headers={
            "Authorization": f"Bearer {BENCH_KEY}",
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
        },
    )
    response = connect.getresponse()
    if response.status != 200:
        raise RuntimeError(f"stream answered {response.status}: {response.read()[:200]!r}")
    first_at: float | None = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = response.readline()
        if not line:
            break
        if first_at is None and line.startswith(b"data:"):
            first_at = time.monotonic()
    sent = upstream.stream_sent_at(stream_id)
    if first_at is None or len(sent) != events:
        raise RuntimeError(f"stream {stream_id} incomplete: {len(sent)} of {events} sent")
    return first_at - sent[0]


def first_event(
    *, trials: int = 5, streams: int = 12, events: int = 8, interval_ms: int = 15
) -> dict[str, Any]:
    """Benchmark (1); medians over `trials` of each trial's median over `streams`."""
    pki = TestPki()
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        (root / "upstream").mkdir()
        cert, key = pki.write_server_files(root / "upstream", "ingress", [INGRESS_NAME])
        upstream = stack.enter_context(nodelay(FakeUpstream(cert_file=cert, key_file=key)))
        generated = _generated_edge(root / "generated", pki, upstream.port)
        default = _reference(root / "default", pki, upstream.port, default_proxy_conf)
        stack.enter_context(running(generated))
        stack.enter_context(running(default))
        direct_context = ssl.create_default_context(cadata=pki.ca_pem.decode())

        def direct() -> http.client.HTTPSConnection:
            return http.client.HTTPSConnection(
                "127.0.0.1", upstream.port, context=direct_context, timeout=10
            )

        variants: dict[str, Connect] = {
            "direct": direct,
            "generated": generated.connection,
            "default_proxy_pass": default.connection,
        }
        per_trial: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(trials):
            for name, connect in variants.items():
                conn = connect()
                try:
                    _first_event_delay(conn, upstream, events, interval_ms)  # warm the connection
                    delays = [
                        _first_event_delay(conn, upstream, events, interval_ms)
                        for _ in range(streams)
                    ]
                finally:
                    conn.close()
                per_trial[name].append(median(delays))
    ms = {name: median(values) * 1000 for name, values in per_trial.items()}
    added = ms["generated"] - ms["direct"]
    return {
        "id": 1,
        "name": "Streaming first event through the edge",
        "figures": {
            "direct_ms": round(ms["direct"], 3),
            "generated_ms": round(ms["generated"], 3),
            "default_proxy_pass_ms": round(ms["default_proxy_pass"], 3),
            "generated_added_ms": round(added, 3),
            "default_added_ms": round(ms["default_proxy_pass"] - ms["direct"], 3),
            "generated_over_direct": round(ms["generated"] / ms["direct"], 2),
            "stream_duration_ms": (events - 1) * interval_ms,
        },
        "headline": f"{added:+.2f} ms over direct (default proxy_pass: "
        f"{ms['default_proxy_pass'] - ms['direct']:+.1f} ms)",
        "target": f"generated within {FIRST_EVENT_TARGET_MS:g} ms of direct",
        "met": added <= FIRST_EVENT_TARGET_MS,
        "method": f"{trials} trials x {streams} streams of {events} events {interval_ms} ms apart, "
        "keep-alive TLS connection per trial; median of trial medians",
    }


_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def _wrk(port: int, *, seconds: int, connections: int) -> float:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {BENCH_KEY}",
            f"https://127.0.0.1:{port}/v1/models",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = _RPS.search(output)
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk output: {output}")
    refused = _NON_2XX.search(output)
    if refused is not None:
        raise RuntimeError(f"{refused.group(1)} non-2xx answers: the measurement is invalid")
    return float(rps.group(1))


_DIAGNOSTICS: dict[str, Callable[[str], str]] = {
    # What each part of the generated config costs: the same file with one part taken out.
    "generated_without_access_log": lambda conf: re.sub(
        r"access_log \S+ edge_json;", "access_log off;", conf
    ),
    # A candidate fix: one write per 32 KiB of log lines (or per second) instead of per request.
    "generated_with_buffered_access_log": lambda conf: re.sub(
        r"access_log (\S+) edge_json;", r"access_log \1 edge_json buffer=32k flush=1s;", conf
    ),
    "generated_without_auth_and_limits": lambda conf: "\n".join(
        line
        for line in conf.splitlines()
        if "limit_req zone=" not in line and "auth_request /_edge_auth;" not in line
    ),
}


def _diagnostic(root: Path, pki: TestPki, upstream_port: int, name: str) -> EdgeFixture:
    fixture = _generated_edge(root, pki, upstream_port)
    fixture.conf.write_text(_DIAGNOSTICS[name](fixture.conf.read_text()))
    return fixture


@contextlib.contextmanager
def _static_upstream(root: Path, pki: TestPki) -> Iterator[EdgeFixture]:
    fixture = EdgeFixture(root, pki, upstream_port=1)
    fixture.cert, fixture.key = pki.write_server_files(root / "tls", "ingress", [INGRESS_NAME])
    fixture.conf.write_text(static_upstream_conf(fixture))
    with running(fixture):
        yield fixture


def throughput(*, trials: int = 3, seconds: int = 3, connections: int = 16) -> dict[str, Any]:
    """Benchmark (2); wrk runs alternate between the two proxies, medians compared."""
    pki = TestPki()
    with tempfile.TemporaryDirectory(prefix="bench-rps-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        upstream = stack.enter_context(_static_upstream(root / "upstream", pki))
        generated = _generated_edge(root / "generated", pki, upstream.https_port)
        minimal = _reference(root / "minimal", pki, upstream.https_port, minimal_tls_proxy_conf)
        fixtures = {"generated": generated, "minimal": minimal}
        for name in _DIAGNOSTICS:
            fixtures[name] = _diagnostic(root / name, pki, upstream.https_port, name)
        for fixture in fixtures.values():
            stack.enter_context(running(fixture))
        ports = {name: fixture.https_port for name, fixture in fixtures.items()}
        for port in ports.values():
            _wrk(port, seconds=1, connections=connections)  # warm-up: sessions, keepalive pools
        runs: dict[str, list[float]] = {name: [] for name in ports}
        for _ in range(trials):
            for name, port in ports.items():
                runs[name].append(_wrk(port, seconds=seconds, connections=connections))
    generated_rps = median(runs["generated"])
    minimal_rps = median(runs["minimal"])
    ratio = generated_rps / minimal_rps
    shares = {name: round(median(runs[name]) / minimal_rps, 3) for name in _DIAGNOSTICS}
    return {
        "id": 2,
        "name": "Edge throughput (wrk, keep-alive)",
        "figures": {
            "generated_rps": round(generated_rps),
            "minimal_tls_proxy_rps": round(minimal_rps),
            "ratio": round(ratio, 3),
            "generated_runs": [round(r) for r in runs["generated"]],
            "minimal_runs": [round(r) for r in runs["minimal"]],
            "diagnostic_ratios": shares,
        },
        "limits": "diagnostic variants (the generated file with one change each) reach "
        + ", ".join(f"{name}: {share:.2f} x" for name, share in shares.items())
        + " of the minimal proxy; the rest is the generated config's TLS settings, upstream "
        "certificate verification and headers. All proxies share 2 cores with wrk and the "
        "upstream, so the ratio is of CPU per request.",
        "headline": f"{ratio:.2f} x the minimal TLS proxy",
        "target": f">= {THROUGHPUT_TARGET_RATIO} x the minimal TLS proxy",
        "met": ratio >= THROUGHPUT_TARGET_RATIO,
        "method": f"wrk -t1 -c{connections}, {trials} alternating runs of {seconds} s each after a "
        "1 s warm-up; one nginx worker per proxy; upstream: static nginx over TLS",
    }

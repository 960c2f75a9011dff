"""Smoke test of a deployed platform: one streaming request per model through the whole path.

    python -m tools.smoke --endpoint https://llm.example.org --key "$KEY" \
        [--models m1,m2] [--first-token-seconds 10] [--ca-file ca.pem] [--json]

Checks, in order, naming the hop that failed where the client can tell:

1. `edge`: `GET /healthz` is answered by the edge nginx itself (`{"status":"ok"}`);
2. `edge`: a request with a wrong key is refused by the edge (401 with the edge's JSON body,
   code `invalid_api_key`); a 401 with any other body means the key got past the edge;
3. `gateway`: `GET /v1/models` with the key answers (the path edge -> tunnel -> ingress ->
   LiteLLM, without a model); the edge's own 502/504 bodies name the edge -> cluster hop;
4. for every model (`--models`, or every id `/v1/models` lists): a streaming chat completion
   - answers 200 and ends with `data: [DONE]`, no error event (`model`);
   - sends its first token within `--first-token-seconds` (the hop is named from the
     `/healthz` and `/v1/models` times: a slow edge or gateway path, else the model);
   - arrives event by event: when the events arrive in fewer bursts (gaps over
     `--burst-gap-ms`) than a quarter of their count, a buffering hop holds the stream.

Exit codes: 0 every check passed; 1 at least one check failed (one `FAIL [hop] ...` line
each); 2 usage error; 3 the edge could not be reached at all (DNS, TCP or TLS).
The key is never printed. Standard library only, so it runs anywhere after `pulumi up`.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import secrets
import ssl
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

EDGE_UNAUTHORIZED_CODE = "invalid_api_key"
EDGE_UPSTREAM_CODES = {"bad_gateway": "edge -> cluster", "gateway_timeout": "edge -> cluster"}
PROMPT = "Count from 1 to 40, one number per line, nothing else."


@dataclass(frozen=True)
class Target:
    """Where the endpoint is and how to talk to it."""

    scheme: str
    host: str
    port: int
    prefix: str
    context: ssl.SSLContext | None
    timeout: float


@dataclass
class Report:
    """Results of every check, in order."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def record(self, check: str, ok: bool, detail: str, hop: str | None = None) -> bool:
        """Add one result and print it; returns `ok`."""
        self.results.append({"check": check, "ok": ok, "hop": hop, "detail": detail})
        if ok:
            print(f"PASS {check}: {detail}")
        else:
            print(f"FAIL [{hop or 'unknown'}] {check}: {detail}")
        return ok

    @property
    def failed(self) -> bool:
        """Whether any check failed."""
        return any(not r["ok"] for r in self.results)


class UnreachableError(Exception):
    """The endpoint could not be reached (DNS, TCP or TLS)."""


def _target(endpoint: str, ca_file: str | None, timeout: float) -> Target:
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
    context = None
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
    port = url.port or (443 if url.scheme == "https" else 80)
    return Target(url.scheme, url.hostname, port, url.path.rstrip("/"), context, timeout)


def _connection(target: Target) -> http.client.HTTPConnection:
    if target.context is not None:
        return http.client.HTTPSConnection(
            target.host, target.port, context=target.context, timeout=target.timeout
        )
    return http.client.HTTPConnection(target.host, target.port, timeout=target.timeout)


def _request(
    target: Target, method: str, path: str, key: str | None, body: Any = None
) -> tuple[int, dict[str, str], bytes, float]:
    """One request on a fresh connection: status, headers, body, seconds taken."""
    headers = {"Accept": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = _connection(target)
    start = time.monotonic()
    try:
        conn.request(method, target.prefix + path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise UnreachableError(f"{method} {path}: {error}") from error
    finally:
        conn.close()
    return (
        response.status,
        {k.lower(): v for k, v in response.getheaders()},
        payload,
        time.monotonic() - start,
    )


def _error_code(body: bytes) -> str | None:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    return None


def _hop_of_error(status: int, body: bytes, default: str) -> str:
    code = _error_code(body)
    if code in EDGE_UPSTREAM_CODES:
        return EDGE_UPSTREAM_CODES[code]
    if code == EDGE_UNAUTHORIZED_CODE or (status in (413, 429) and code is not None):
        return "edge"
    return default


@dataclass
class Stream:
    """What one streaming request looked like from the client."""

    status: int
    error_body: bytes = b""
    first_token_s: float | None = None
    arrivals: list[float] = field(default_factory=list)
    done: bool = False
    error_event: str | None = None


def _events(response: http.client.HTTPResponse, deadline: float) -> Iterator[tuple[float, bytes]]:
    while time.monotonic() < deadline:
        line = response.readline()
        if not line:
            return
        if line.startswith(b"data:"):
            yield time.monotonic(), line[5:].strip()


def stream_chat(target: Target, key: str, model: str, max_tokens: int) -> Stream:
    """A streaming chat completion; timestamps of every SSE data event."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "max_tokens": max_tokens,
    }
    conn = _connection(target)
    start = time.monotonic()
    try:
        conn.request(
            "POST",
            target.prefix + "/v1/chat/completions",
            body=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
            },
        )
        response = conn.getresponse()
        if response.status != 200:
            return Stream(status=response.status, error_body=response.read())
        result = Stream(status=200)
        for at, data in _events(response, start + target.timeout):
            if data == b"[DONE]":
                result.done = True
                break
            result.arrivals.append(at)
            try:
                event = json.loads(data)
            except ValueError:
                result.error_event = f"unparseable event {data[:80]!r}"
                break
            if "error" in event:
                result.error_event = json.dumps(event["error"])[:200]
                break
            choices = event.get("choices") or [{}]
            content = (choices[0].get("delta") or {}).get("content")
            if content and result.first_token_s is None:
                result.first_token_s = at - start
        return result
    except (OSError, http.client.HTTPException) as error:
        raise UnreachableError(f"stream of {model}: {error}") from error
    finally:
        conn.close()


def bursts(arrivals: Sequence[float], gap_s: float) -> int:
    """Number of groups of events separated by more than `gap_s`."""
    return 1 + sum(1 for a, b in itertools.pairwise(arrivals) if b - a > gap_s)


def check_edge(target: Target, report: Report) -> None:
    """Checks 1 and 2: the edge answers itself and refuses a wrong key."""
    status, _, body, took = _request(target, "GET", "/healthz", None)
    healthy = status == 200 and body.strip() == b'{"status":"ok"}'
    report.record("edge health", healthy, f"/healthz {status} in {took * 1000:.0f} ms", "edge")
    wrong = "sk-smoke-wrong-" + secrets.token_hex(16)
    probe = {"model": "smoke", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    status, headers, body, _ = _request(target, "POST", "/v1/chat/completions", wrong, probe)
    if (
        status == 401
        and _error_code(body) == EDGE_UNAUTHORIZED_CODE
        and (headers.get("www-authenticate") == "Bearer")
    ):
        report.record("wrong key refused", True, "401 from the edge", "edge")
    elif status == 401:
        report.record(
            "wrong key refused",
            False,
            "401, but not the edge's body: the key got past the edge and was refused behind it",
            "edge",
        )
    else:
        report.record(
            "wrong key refused", False, f"expected 401 from the edge, got {status}", "edge"
        )


def list_models(target: Target, key: str, report: Report) -> tuple[list[str], float]:
    """Check 3: the models the gateway serves, and how long the edge+gateway path took."""
    status, _, body, took = _request(target, "GET", "/v1/models", key)
    if status != 200:
        report.record(
            "gateway models",
            False,
            f"/v1/models answered {status}: {body[:200]!r}",
            _hop_of_error(status, body, "gateway"),
        )
        return [], took
    ids = sorted(str(m["id"]) for m in json.loads(body).get("data", []))
    report.record("gateway models", True, f"{len(ids)} models in {took * 1000:.0f} ms")
    return ids, took


def check_model(
    target: Target,
    key: str,
    model: str,
    report: Report,
    *,
    first_token_s: float,
    gateway_s: float,
    burst_gap_s: float,
    max_tokens: int,
) -> None:
    """Check 4 for one model: answers, first token in time, event by event."""
    stream = stream_chat(target, key, model, max_tokens)
    name = f"model {model}"
    if stream.status != 200:
        report.record(
            f"{name} answers",
            False,
            f"{stream.status}: {stream.error_body[:200]!r}",
            _hop_of_error(stream.status, stream.error_body, "gateway -> model"),
        )
        return
    if stream.error_event is not None or not stream.done:
        detail = stream.error_event or "the stream ended without data: [DONE]"
        report.record(f"{name} answers", False, detail, "gateway -> model")
        return
    if stream.first_token_s is None:
        report.record(f"{name} answers", False, "no content in the stream", "model")
        return
    report.record(f"{name} answers", True, f"{len(stream.arrivals)} events")
    if stream.first_token_s > first_token_s:
        hop = "edge -> gateway" if gateway_s > first_token_s / 2 else "model"
        report.record(
            f"{name} first token",
            False,
            f"{stream.first_token_s:.2f} s > {first_token_s:g} s "
            f"(/v1/models through edge and gateway took {gateway_s:.2f} s)",
            hop,
        )
    else:
        report.record(f"{name} first token", True, f"{stream.first_token_s:.3f} s")
    count = len(stream.arrivals)
    if count < 8:
        report.record(f"{name} streaming", True, f"only {count} events: too few to judge")
        return
    groups = bursts(stream.arrivals, burst_gap_s)
    if groups * 4 < count:
        report.record(
            f"{name} streaming",
            False,
            f"{count} events arrived in {groups} bursts: a hop buffers the stream "
            "(the edge config disables buffering; look at the ingress, LiteLLM or a proxy "
            "in front of the edge)",
            "buffering hop",
        )
    else:
        report.record(f"{name} streaming", True, f"{count} events in {groups} bursts")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="public URL of the edge")
    parser.add_argument("--key", required=True, help="a client API key (never printed)")
    parser.add_argument("--models", help="comma-separated model names (default: /v1/models)")
    parser.add_argument("--first-token-seconds", type=float, default=10.0)
    parser.add_argument("--burst-gap-ms", type=float, default=2.0)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument("--ca-file", help="CA bundle for a private certificate (tests, dev)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON last")
    args = parser.parse_args(argv)
    try:
        target = _target(args.endpoint, args.ca_file, args.timeout)
    except (ValueError, OSError) as error:
        print(f"usage error: {error}", file=sys.stderr)
        return EXIT_USAGE
    report = Report()
    try:
        check_edge(target, report)
    except UnreachableError as error:
        report.record("edge reachable", False, str(error), "edge")
        return EXIT_UNREACHABLE
    try:
        listed, gateway_s = list_models(target, args.key, report)
        models = [m for m in (args.models or "").split(",") if m] or listed
        if not models:
            report.record("models", False, "no model to try", "gateway")
        for model in models:
            check_model(
                target,
                args.key,
                model,
                report,
                first_token_s=args.first_token_seconds,
                gateway_s=gateway_s,
                burst_gap_s=args.burst_gap_ms / 1000,
                max_tokens=args.max_tokens,
            )
    except UnreachableError as error:
        report.record("request", False, str(error), "edge -> gateway")
    if args.json:
        print(json.dumps(report.results, indent=2))
    return EXIT_FAILED if report.failed else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())

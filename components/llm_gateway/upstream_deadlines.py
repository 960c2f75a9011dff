"""Deadlines on a local model server, enforced on the HTTP connection to it.

Shipped in the gateway's ConfigMap beside `failover_hooks.py`, which installs it on every
call to a local deployment (not imported by the program; the tests import it). It needs
only httpx, the HTTP client LiteLLM itself uses.

One read timeout per request cannot tell a wedged server from a slow generation: httpx
applies the same limit to the response headers and to every read after them, and the
pinned LiteLLM hands hosted_vllm a single float (`litellm/litellm_core_utils/
completion_timeout.py` `CompletionTimeout.resolve`). So the transport keeps three clocks of
its own per chat completion, from `Deadlines`:

- **first token**: the headers and the first server-sent event must arrive within it,
  counted from when the gateway took the request (`CALL_STARTED`, set by the hooks for
  the call) rather than from when the server was asked: routing, checks and a failed
  earlier attempt are part of what the client waits. The server is always given at least
  `SERVER_SHARE` of it, so a slow gateway (a slow database behind the key checks) does
  not make healthy servers miss their deadlines and cool down. The server's part ends
  `FALLBACK_RESERVE` early, so that the fallback's first token, not its dispatch, is what
  the client waits for past the deadline.
  vLLM sends a stream's first event with the first generated token (its chat stream
  generator yields the role chunk on the engine's first output for the request), so a
  wedged GPU, a blocked event loop or a black-holed connection all miss it.
- **idle**: the longest pause between two reads of a stream, once the first event is in.
- **total**: the whole request.

A non-streaming request would show nothing before its answer is complete (vLLM sends a
plain answer in one piece), so its first token could not be timed: the transport asks
the server for a stream instead (`stream: true`, with the usage chunk) and assembles the
events into the `chat.completion` object the caller asked for. A streaming request is
relayed byte for byte once its first event has arrived; its headers are held until then,
so a server that misses the first-token deadline is a failed call (the caller's fallback
takes over) rather than a stream that began and stalled.

Every missed deadline is an `httpx.ReadTimeout`, the error the caller would see from
httpx itself; an upstream error status or error event is passed on as an HTTP error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

CHAT_PATH_SUFFIX = "/chat/completions"

DEADLINES_KEY = "llm_platform_deadlines"
"""The key of a deployment's `model_info` that carries its `Deadlines` (rendered by
`components/llm_gateway/litellm_config.py`)."""

NOT_STREAMABLE = frozenset({"best_of", "use_beam_search"})
"""Request fields vLLM serves only without streaming: such a request is passed on as it
is, bounded by the total deadline alone."""

SERVER_SHARE = 0.5
"""The part of the first-token deadline a server gets however long the gateway took."""

FALLBACK_RESERVE = 0.1
"""Seconds of the first-token deadline (at most a tenth of it) kept for dispatching the
fallback once the server has missed it: the router's failure bookkeeping and its second
pass took 15-50 ms on a shared 2-core machine (benchmark 6)."""

CALL_STARTED: ContextVar[float | None] = ContextVar("llm_platform_call_started", default=None)
"""When the gateway took the request being served (`time.time()`), for the calls made in
its task; unset, the deadlines run from when the server is asked."""

STRING_DELTA_FIELDS = ("content", "reasoning_content", "reasoning", "refusal")
"""Delta fields whose pieces are concatenated into the assembled message."""


@dataclass(frozen=True)
class Deadlines:
    """Seconds allowed to a local model's first token, to a pause in a stream, and to the
    whole request."""

    first_token: float
    idle: float
    total: float

    def __post_init__(self) -> None:
        if not 0 < self.first_token <= self.total or not 0 < self.idle <= self.total:
            raise ValueError(f"inconsistent deadlines {self}")

    @classmethod
    def from_model_info(cls, model_info: Mapping[str, Any] | None) -> Deadlines | None:
        """The deadlines a deployment's `model_info` carries, or None (not a local model)."""
        raw = (model_info or {}).get(DEADLINES_KEY)
        if not isinstance(raw, Mapping):
            return None
        try:
            return cls(
                first_token=float(raw["first_token_seconds"]),
                idle=float(raw["stream_idle_seconds"]),
                total=float(raw["total_seconds"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def server_first_token_seconds(deadlines: Deadlines) -> float:
    """The first-token deadline less the fallback's reserve: what the server has from when
    the gateway took the request."""
    return deadlines.first_token - min(FALLBACK_RESERVE, deadlines.first_token / 10)


class _Clock:
    """The request's deadlines as points in time on the event loop's clock."""

    def __init__(self, deadlines: Deadlines) -> None:
        loop = asyncio.get_running_loop()
        self._now = loop.time
        started = loop.time()
        first_token = server_first_token_seconds(deadlines)
        call_started = CALL_STARTED.get()
        if call_started is not None:
            spent = max(0.0, time.time() - call_started)
            started -= min(spent, (1 - SERVER_SHARE) * first_token)
        self.deadlines = deadlines
        self.first_token_by = started + first_token
        self.end_by = started + deadlines.total

    def left(self, until: float) -> float:
        return max(0.0, min(until, self.end_by) - self._now())

    def next_read(self) -> float:
        """Seconds the next read of a started stream may take."""
        return self.left(self._now() + self.deadlines.idle)


async def _within(seconds: float, awaitable: Awaitable[T], request: httpx.Request, what: str) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout=seconds)
    except TimeoutError:
        raise httpx.ReadTimeout(what, request=request) from None


class _SseEvents:
    """Reads a byte stream and splits off whole server-sent events, keeping the raw bytes
    when `keep_raw` (a relayed stream passes them on unchanged; an assembled answer needs
    only the events, and keeping its whole body would copy it at every read)."""

    def __init__(self, stream: httpx.AsyncByteStream, *, keep_raw: bool) -> None:
        self._chunks: AsyncIterator[bytes] = stream.__aiter__()
        self._pending = b""
        self._keep_raw = keep_raw
        self.raw = b""
        """Bytes read and not yet handed on (with `keep_raw`)."""

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            return None
        if self._keep_raw:
            self.raw += chunk
        self._pending += chunk
        return chunk

    def take_raw(self) -> bytes:
        """The bytes read so far and not handed on; what is relayed needs no parsing."""
        raw, self.raw, self._pending = self.raw, b"", b""
        return raw

    def next_data(self) -> str | None:
        """The `data` of the next whole event already read, or None. Events without data
        (comments, keep-alives) are skipped."""
        while True:
            normalised = self._pending.replace(b"\r\n", b"\n")
            end = normalised.find(b"\n\n")
            if end < 0:
                self._pending = normalised
                return None
            event, self._pending = normalised[:end], normalised[end + 2 :]
            lines = event.decode("utf-8", errors="replace").split("\n")
            data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
            if data:
                return "\n".join(data)


class _RelayedStream(httpx.AsyncByteStream):
    """A started stream passed on byte for byte, each read within the idle deadline and
    the whole within the total one."""

    def __init__(
        self,
        events: _SseEvents,
        upstream: httpx.Response,
        clock: _Clock,
        request: httpx.Request,
    ) -> None:
        self._events = events
        self._upstream = upstream
        self._clock = clock
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = self._events.take_raw()
        if head:
            yield head
        for _ in range(10_000_000):  # bounded: every read is one event or more
            chunk = await _within(
                self._clock.next_read(),
                self._events.read_chunk(),
                self._request,
                "model server stalled mid-stream",
            )
            if chunk is None:
                return
            yield self._events.take_raw()

    async def aclose(self) -> None:
        await self._upstream.aclose()


def _with_body(request: httpx.Request, body: Mapping[str, Any]) -> httpx.Request:
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    return httpx.Request(
        request.method,
        request.url,
        headers=headers,
        content=json.dumps(body).encode(),
        extensions=request.extensions,
    )


def _merge_tool_calls(into: list[dict[str, Any]], pieces: list[Any]) -> None:
    for piece in pieces:
        if not isinstance(piece, Mapping):
            continue
        index = piece.get("index", len(into))
        while len(into) <= index:
            into.append({"function": {"name": "", "arguments": ""}})
        call = into[index]
        for key in ("id", "type"):
            if piece.get(key):
                call[key] = piece[key]
        function = piece.get("function") or {}
        for key in ("name", "arguments"):
            if isinstance(function.get(key), str):
                call["function"][key] += function[key]


def assemble_chat_completion(chunks: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The `chat.completion` object a stream of `chat.completion.chunk` events adds up to:
    text and reasoning concatenated per choice, tool calls merged by index, log-probs
    joined, the last finish reason, and the usage the final chunk reports."""
    if not chunks:
        raise ValueError("no chunks to assemble")
    first = chunks[0]
    choices: dict[int, dict[str, Any]] = {}
    usage: Any = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for piece in chunk.get("choices") or []:
            index = int(piece.get("index", 0))
            choice = choices.setdefault(
                index,
                {"index": index, "message": {"role": "assistant"}, "finish_reason": None},
            )
            message = choice["message"]
            delta = piece.get("delta") or {}
            if isinstance(delta.get("role"), str):
                message["role"] = delta["role"]
            for key in STRING_DELTA_FIELDS:
                if isinstance(delta.get(key), str):
                    message[key] = message.get(key, "") + delta[key]
            if isinstance(delta.get("tool_calls"), list):
                _merge_tool_calls(message.setdefault("tool_calls", []), delta["tool_calls"])
            for key in ("finish_reason", "stop_reason"):
                if piece.get(key) is not None:
                    choice[key] = piece[key]
            logprobs = piece.get("logprobs")
            if isinstance(logprobs, Mapping):
                joined = choice.setdefault("logprobs", {})
                for key, values in logprobs.items():
                    if isinstance(values, list):
                        joined[key] = joined.get(key, []) + values
    for choice in choices.values():
        choice["message"].setdefault("content", None)
    assembled: dict[str, Any] = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": [choices[i] for i in sorted(choices)],
    }
    if first.get("system_fingerprint") is not None:
        assembled["system_fingerprint"] = first["system_fingerprint"]
    if usage is not None:
        assembled["usage"] = usage
    return assembled


class DeadlineTransport(httpx.AsyncBaseTransport):
    """An httpx transport that holds chat completions to a local model's `Deadlines` and
    serves non-streaming ones from a stream (module docstring). Everything else passes
    through to `inner` untouched."""

    def __init__(self, inner: httpx.AsyncBaseTransport, deadlines: Deadlines) -> None:
        self._inner = inner
        self.deadlines = deadlines

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith(CHAT_PATH_SUFFIX):
            return await self._inner.handle_async_request(request)
        try:
            body = json.loads(await request.aread())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return await self._inner.handle_async_request(request)
        clock = _Clock(self.deadlines)
        if body.get("stream") is True:
            return await self._stream(request, clock)
        if NOT_STREAMABLE & body.keys():
            return await _within(
                clock.left(clock.end_by),
                self._inner.handle_async_request(request),
                request,
                "model server exceeded the total deadline",
            )
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        return await self._assembled(_with_body(request, streamed), request, clock)

    async def _first_event(
        self, request: httpx.Request, clock: _Clock, *, relay: bool
    ) -> tuple[httpx.Response, _SseEvents | None, str | None]:
        """The upstream response and, when it is a stream (status 200), its reader (keeping
        the raw bytes when they are to be relayed) and first event's data; both within the
        first-token deadline."""
        missed = "no first token from the model server within its deadline"
        upstream = await _within(
            clock.left(clock.first_token_by),
            self._inner.handle_async_request(request),
            request,
            missed,
        )
        if upstream.status_code != 200 or not isinstance(upstream.stream, httpx.AsyncByteStream):
            return upstream, None, None
        events = _SseEvents(upstream.stream, keep_raw=relay)
        try:
            for _ in range(1_000_000):  # bounded: each turn reads one chunk
                data = events.next_data()
                if data is not None:
                    return upstream, events, data
                chunk = await _within(
                    clock.left(clock.first_token_by), events.read_chunk(), request, missed
                )
                if chunk is None:
                    raise httpx.RemoteProtocolError(
                        "model server ended its stream before any event", request=request
                    )
        except BaseException:
            await upstream.aclose()
            raise
        raise httpx.RemoteProtocolError("no event in the stream", request=request)

    async def _stream(self, request: httpx.Request, clock: _Clock) -> httpx.Response:
        upstream, events, _ = await self._first_event(request, clock, relay=True)
        if events is None:
            return upstream
        return httpx.Response(
            200,
            headers=upstream.headers,
            stream=_RelayedStream(events, upstream, clock, request),
            extensions=upstream.extensions,
            request=request,
        )

    async def _assembled(
        self, upstream_request: httpx.Request, request: httpx.Request, clock: _Clock
    ) -> httpx.Response:
        upstream, events, data = await self._first_event(upstream_request, clock, relay=False)
        if events is None or data is None:
            return upstream
        chunks: list[Mapping[str, Any]] = []
        try:
            for _ in range(10_000_000):  # bounded: each turn reads one event or one chunk
                if data is not None:
                    if data.strip() == "[DONE]":
                        break
                    try:
                        parsed = json.loads(data)
                    except ValueError:
                        raise httpx.DecodingError(
                            "model server sent an event that is not JSON", request=request
                        ) from None
                    if isinstance(parsed, Mapping) and (
                        "error" in parsed or parsed.get("object") == "error"
                    ):
                        return _error_response(parsed, request)
                    if isinstance(parsed, Mapping):
                        chunks.append(parsed)
                    data = events.next_data()
                    continue
                chunk = await _within(
                    clock.next_read(),
                    events.read_chunk(),
                    request,
                    "model server stalled before finishing its answer",
                )
                if chunk is None:
                    raise httpx.RemoteProtocolError(
                        "model server ended its stream without [DONE]", request=request
                    )
                data = events.next_data()
        finally:
            await upstream.aclose()
        return _json_response(200, assemble_chat_completion(chunks), request)


def _error_response(event: Mapping[str, Any], request: httpx.Request) -> httpx.Response:
    """An error event in a stream (vLLM reports a failure after the headers this way,
    `{"error": {..., "code": N}}`, or flat with `"object": "error"` in older releases) as
    the HTTP error a non-streaming call would have got."""
    error = event.get("error")
    code = (error if isinstance(error, Mapping) else event).get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    return _json_response(status, dict(event), request)


def _json_response(status: int, payload: Any, request: httpx.Request) -> httpx.Response:
    """A response as a transport hands it on: its body not yet read."""
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)

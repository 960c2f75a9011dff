"""The gateway hooks' transport (`components/llm_gateway/upstream_deadlines.py`) in the
HTTP client LiteLLM uses (httpx, the version the pinned proxy runs), against a fake vLLM
on loopback: what reaches the server, what comes back, and when each deadline fires.

Deadlines here are a fraction of a second so each case stays quick; the live tests run
the same transport inside the real proxy on each stack's rendered deadlines.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.llm_gateway.upstream_deadlines import (
    CALL_STARTED,
    DEADLINES_KEY,
    SERVER_SHARE,
    Deadlines,
    DeadlineTransport,
    assemble_chat_completion,
    server_first_token_seconds,
)
from tests.fakes.openai_server import OpenAiFake

DEADLINES = Deadlines(first_token=0.6, idle=1.2, total=3.0)
SLACK_S = 0.5
SERVED_FIRST_TOKEN = server_first_token_seconds(DEADLINES)
"""When the transport gives up on a first token (the fallback gets the rest)."""


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAiFake]:
    with OpenAiFake("vllm-fake", tokens=5) as fake:
        yield fake


@pytest.fixture
def vllm(server: OpenAiFake) -> Iterator[OpenAiFake]:
    def reset() -> None:
        server.mode = "normal"
        server.first_token_delay = 0.0
        server.token_interval = 0.0
        server.pause_seconds = 0.0
        server.release.set()
        server.clear()

    reset()
    server.release.clear()
    yield server
    reset()


def _chat(stream: bool, **extra: Any) -> dict[str, Any]:
    return {
        "model": "vllm-fake",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": stream,
        **extra,
    }


class Outcome:
    """What a call through the transport gave: status, headers, body (a stream's bytes as
    they arrived), or the error, and when."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.error: Exception | None = None
        self.seconds = 0.0
        self.headers_seconds = 0.0

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[str]:
        return [
            line[len("data: ") :]
            for line in self.body.decode().splitlines()
            if line.startswith("data: ")
        ]


def _call(
    fake: OpenAiFake,
    body: dict[str, Any] | None,
    *,
    path: str = "/v1/chat/completions",
    waited: float | None = None,
) -> Outcome:
    """One request through a client with the transport, read to the end; `waited`: the
    gateway took the request that long before it asks the server."""

    async def run() -> Outcome:
        if waited is not None:
            CALL_STARTED.set(time.time() - waited)
        outcome = Outcome()
        transport = DeadlineTransport(httpx.AsyncHTTPTransport(), DEADLINES)
        started = time.monotonic()
        async with httpx.AsyncClient(transport=transport, timeout=30) as client:
            try:
                if body is None:
                    request = client.build_request("GET", f"{fake.base_url}{path}")
                else:
                    request = client.build_request("POST", f"{fake.base_url}{path}", json=body)
                response = await client.send(request, stream=True)
                outcome.headers_seconds = time.monotonic() - started
                outcome.status = response.status_code
                outcome.headers = dict(response.headers)
                try:
                    async for chunk in response.aiter_raw():
                        outcome.body += chunk
                finally:
                    await response.aclose()
            except httpx.HTTPError as error:
                outcome.error = error
        outcome.seconds = time.monotonic() - started
        return outcome

    return asyncio.run(run())


def _text(outcome: Outcome, stream: bool) -> str:
    """The answer's text, from the assembled answer or the relayed events."""
    if not stream:
        return str(outcome.json()["choices"][0]["message"]["content"])
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for event in outcome.events()
        if event != "[DONE]"
        for choice in json.loads(event)["choices"]
    )


def _sent_upstream(fake: OpenAiFake) -> list[dict[str, Any]]:
    return [s.body for s in fake.seen("/v1/chat/completions")]


# --- what a healthy server gives -------------------------------------------------------


def test_a_plain_request_is_asked_as_a_stream_and_answered_whole(vllm: OpenAiFake) -> None:
    outcome = _call(vllm, _chat(stream=False, max_tokens=64))
    assert outcome.error is None and outcome.status == 200, outcome.error
    answer = outcome.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "vllm-fake"
    (choice,) = answer["choices"]
    assert choice["message"] == {"role": "assistant", "content": vllm.text}
    assert choice["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == vllm.tokens
    (sent,) = _sent_upstream(vllm)
    # The server was asked for a stream with its usage chunk; the rest went unchanged.
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 64 and sent["messages"] == _chat(stream=False)["messages"]


def test_a_stream_is_relayed_byte_for_byte(vllm: OpenAiFake) -> None:
    outcome = _call(vllm, _chat(stream=True))
    assert outcome.error is None and outcome.status == 200
    assert outcome.headers["content-type"].startswith("text/event-stream")
    assert outcome.events()[-1] == "[DONE]"
    assert _text(outcome, stream=True) == vllm.text
    (sent,) = _sent_upstream(vllm)
    assert "stream_options" not in sent  # a client's stream goes as it was asked


def test_a_pause_longer_than_the_first_token_deadline_but_within_idle_is_waited_for(
    vllm: OpenAiFake,
) -> None:
    vllm.first_token_delay = DEADLINES.first_token - 0.3
    vllm.pause_seconds = DEADLINES.first_token + 0.3
    assert vllm.pause_seconds < DEADLINES.idle
    for stream in (False, True):
        outcome = _call(vllm, _chat(stream=stream))
        assert outcome.error is None and outcome.status == 200, (stream, outcome.error)
        took = vllm.first_token_delay + vllm.pause_seconds
        assert took - 0.1 <= outcome.seconds <= took + SLACK_S, (stream, outcome.seconds)
        assert _text(outcome, stream) == vllm.text


def test_requests_elsewhere_pass_through_untouched(vllm: OpenAiFake) -> None:
    models = _call(vllm, None, path="/v1/models")
    assert models.status == 200 and models.json()["data"][0]["id"] == "vllm-fake"
    embeddings = _call(vllm, {"model": "vllm-fake", "input": ["x"]}, path="/v1/embeddings")
    assert embeddings.status == 200 and len(embeddings.json()["data"]) == 1
    # Beam search is served only without streaming: the request goes as it was.
    vllm.clear()
    plain = _call(vllm, _chat(stream=False, best_of=2))
    assert plain.status == 200
    assert plain.json()["choices"][0]["message"]["content"] == vllm.text
    (sent,) = _sent_upstream(vllm)
    assert sent["stream"] is False and "stream_options" not in sent


# --- what a failing server gives -------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["hang", "hang-after-headers", "late-first-token"])
def test_no_first_token_within_the_deadline_is_a_read_timeout_before_any_header(
    vllm: OpenAiFake, mode: str, stream: bool
) -> None:
    """Accept-and-hang, headers then nothing (a wedged GPU), or a first token that comes
    too late: the caller gets a timeout of the call itself at the first-token deadline,
    never a response that began (a stream's headers are held until its first event)."""
    if mode == "late-first-token":
        vllm.first_token_delay = DEADLINES.first_token + 1.0
    else:
        vllm.mode = mode
    outcome = _call(vllm, _chat(stream=stream))
    assert isinstance(outcome.error, httpx.ReadTimeout), outcome.error
    assert outcome.status == 0, "no response may have started"
    first = SERVED_FIRST_TOKEN
    assert first < DEADLINES.first_token
    assert first - 0.05 <= outcome.seconds <= first + SLACK_S, outcome.seconds


def test_the_first_token_deadline_counts_from_when_the_gateway_took_the_request(
    vllm: OpenAiFake,
) -> None:
    vllm.mode = "hang-after-headers"
    outcome = _call(vllm, _chat(stream=True), waited=0.4)
    assert isinstance(outcome.error, httpx.ReadTimeout), outcome.error
    left = SERVED_FIRST_TOKEN - 0.4
    assert left - 0.05 <= outcome.seconds <= left + SLACK_S, outcome.seconds
    # A gateway that took longer than the deadline (a slow key check) still gives a
    # healthy server its share: it answers, and would not be cooled down.
    vllm.mode = "normal"
    vllm.first_token_delay = SERVER_SHARE * SERVED_FIRST_TOKEN - 0.15
    late = _call(vllm, _chat(stream=False), waited=DEADLINES.first_token + 5)
    assert late.error is None and late.status == 200, late.error
    vllm.first_token_delay = SERVER_SHARE * SERVED_FIRST_TOKEN + 0.15
    missed = _call(vllm, _chat(stream=False), waited=DEADLINES.first_token + 5)
    assert isinstance(missed.error, httpx.ReadTimeout), missed.error
    share = SERVER_SHARE * SERVED_FIRST_TOKEN
    assert share - 0.05 <= missed.seconds <= share + SLACK_S


@pytest.mark.parametrize("stream", [False, True])
def test_a_stall_after_the_first_token_ends_at_the_idle_deadline(
    vllm: OpenAiFake, stream: bool
) -> None:
    """A stream that stops after two events: a relayed stream has started (status 200,
    the first events delivered) and then fails with a read timeout; a plain request
    fails as a whole. Both at the idle deadline, not the first-token one."""
    vllm.mode = "hang-after-tokens"
    outcome = _call(vllm, _chat(stream=stream))
    assert isinstance(outcome.error, httpx.ReadTimeout), outcome.error
    idle = DEADLINES.idle
    assert idle - 0.05 <= outcome.seconds <= idle + SLACK_S, outcome.seconds
    if stream:
        assert outcome.status == 200 and outcome.headers_seconds < SLACK_S
        assert len(outcome.events()) == vllm.hang_after
    else:
        assert outcome.status == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_trickle_within_idle_is_cut_at_the_total_deadline(vllm: OpenAiFake, stream: bool) -> None:
    vllm.token_interval = DEADLINES.idle - 0.4
    assert vllm.token_interval * len(vllm.words()) > DEADLINES.total
    outcome = _call(vllm, _chat(stream=stream))
    assert isinstance(outcome.error, httpx.ReadTimeout), outcome.error
    total = DEADLINES.total
    assert total - 0.05 <= outcome.seconds <= total + SLACK_S, outcome.seconds


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_pass_through_with_their_status_and_headers(
    vllm: OpenAiFake, stream: bool
) -> None:
    vllm.mode = "rate-limited"
    limited = _call(vllm, _chat(stream=stream))
    assert limited.status == 429 and limited.headers["retry-after"] == str(vllm.retry_after)
    vllm.mode = "error"
    failed = _call(vllm, _chat(stream=stream))
    assert failed.status == 500 and failed.json()["error"]["message"] == "fake backend error"


def test_an_error_event_in_the_stream_is_an_error_status_for_a_plain_request(
    vllm: OpenAiFake,
) -> None:
    vllm.mode = "error-event"
    outcome = _call(vllm, _chat(stream=False))
    assert outcome.status == 500
    assert outcome.json()["error"]["message"] == "fake engine failure"


def test_a_stream_cut_before_its_end_is_a_protocol_error_for_a_plain_request(
    vllm: OpenAiFake,
) -> None:
    vllm.mode = "break-after-first-event"
    outcome = _call(vllm, _chat(stream=False))
    assert isinstance(outcome.error, httpx.RemoteProtocolError), outcome.error
    assert outcome.status == 0


# --- assembling a stream into an answer ------------------------------------------------


def _chunk(choices: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": choices,
        **top,
    }


def test_tool_calls_reasoning_choices_and_logprobs_assemble_like_a_plain_answer() -> None:
    token = {"token": "a", "logprob": -0.1, "top_logprobs": []}
    chunks = [
        _chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
        _chunk([{"index": 0, "delta": {"reasoning_content": "think "}}]),
        _chunk([{"index": 0, "delta": {"reasoning_content": "hard"}}]),
        _chunk(
            [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"ci'},
                            }
                        ]
                    },
                }
            ]
        ),
        _chunk(
            [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]
                    },
                }
            ]
        ),
        _chunk(
            [
                {
                    "index": 1,
                    "delta": {"role": "assistant", "content": "b"},
                    "logprobs": {"content": [token]},
                }
            ]
        ),
        _chunk(
            [
                {
                    "index": 1,
                    "delta": {"content": "c"},
                    "logprobs": {"content": [token]},
                    "finish_reason": "length",
                }
            ]
        ),
        _chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls", "stop_reason": None}]),
        _chunk([], usage={"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}),
    ]
    answer = assemble_chat_completion(chunks)
    assert answer["object"] == "chat.completion"
    assert (answer["id"], answer["created"], answer["model"]) == ("c1", 7, "m")
    first, second = answer["choices"]
    assert first["finish_reason"] == "tool_calls"
    assert first["message"]["reasoning_content"] == "think hard"
    assert first["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert json.loads(first["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Oslo"
    }
    assert second["message"] == {"role": "assistant", "content": "bc"}
    assert second["finish_reason"] == "length"
    assert second["logprobs"] == {"content": [token, token]}
    assert answer["usage"]["total_tokens"] == 12


def test_an_answer_with_no_text_has_null_content() -> None:
    answer = assemble_chat_completion(
        [_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])]
    )
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": None}
    with pytest.raises(ValueError):
        assemble_chat_completion([])


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(st.text(max_size=8), max_size=30))
def test_any_split_of_the_text_assembles_back_to_it(pieces: list[str]) -> None:
    chunks = [_chunk([{"index": 0, "delta": {"content": piece}}]) for piece in pieces]
    chunks.append(_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    message = assemble_chat_completion(chunks)["choices"][0]["message"]
    assert message["content"] == ("".join(pieces) if pieces else None)


# --- the deadlines themselves ----------------------------------------------------------


def test_deadlines_round_trip_and_refuse_nonsense() -> None:
    info = {DEADLINES_KEY: {"first_token_seconds": 1, "stream_idle_seconds": 2, "total_seconds": 9}}
    assert Deadlines.from_model_info(info) == Deadlines(first_token=1, idle=2, total=9)
    for broken in (None, {}, {DEADLINES_KEY: "x"}, {DEADLINES_KEY: {"first_token_seconds": 1}}):
        assert Deadlines.from_model_info(broken) is None
    for first, idle, total in ((0, 1, 2), (3, 1, 2), (1, 3, 2), (1, -1, 2)):
        with pytest.raises(ValueError):
            Deadlines(first_token=first, idle=idle, total=total)

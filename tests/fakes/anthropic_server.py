"""A fake Anthropic Messages API on loopback: `POST /v1/messages`, JSON or SSE.

Checks `x-api-key` against the key it was given (401 `authentication_error` otherwise)
and `anthropic-version`, so a test proves the gateway sends the key it read from its
environment. Streams use Anthropic's event types in their order: `message_start`,
`content_block_start`, `ping`, `content_block_delta` (`text_delta`) per piece,
`content_block_stop`, `message_delta` (stop reason, usage), `message_stop`. A request
whose last message is the assistant's (a prefill, as LiteLLM's mid-stream fallback sends
the partial answer) is answered with the rest only, as Anthropic continues a prefill.
The modes and timing knobs are those of `tests.fakes.sse_server.FakeApi`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.sse_server import FakeApi, FakeHandler


def prefilled(body: dict[str, Any]) -> bool:
    """Whether the request ends with an assistant message to be continued."""
    messages = body.get("messages") or []
    return bool(messages) and messages[-1].get("role") == "assistant"


class _AnthropicHandler(FakeHandler):
    @property
    def anthropic(self) -> AnthropicFake:
        fake = self.fake
        assert isinstance(fake, AnthropicFake)
        return fake

    def _error(self, status: int, kind: str, message: str) -> None:
        self.send_json(status, {"type": "error", "error": {"type": kind, "message": message}})

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/v1/messages":
            self._error(404, "not_found_error", f"no route {self.path}")
            return
        body = self.read_json()
        fake = self.anthropic
        if self.headers.get("x-api-key") != fake.api_key:
            self._error(401, "authentication_error", "invalid x-api-key")
            return
        if not self.headers.get("anthropic-version"):
            self._error(400, "invalid_request_error", "anthropic-version header is required")
            return
        if fake.mode == "hang":
            self.hang()
            return
        if fake.mode == "error":
            self._error(529, "overloaded_error", "fake overload")
            return
        time.sleep(fake.first_token_delay)
        model = str(body.get("model", "unknown"))
        words = fake.words(continuing=prefilled(body))
        if body.get("stream"):
            self._stream(model, words)
        elif fake.mode == "break-after-first-event":
            self.cut_connection()
        else:
            self.send_json(200, self._message(model, "".join(words)))

    def _message(self, model: str, text: str) -> dict[str, Any]:
        fake = self.anthropic
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": fake.tokens},
        }

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        self.send_chunk(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n")

    def _stream(self, model: str, words: list[str]) -> None:
        fake = self.anthropic
        self.start_stream()
        start = {**self._message(model, ""), "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": 9, "output_tokens": 1}
        self._event("message_start", {"message": start})
        self._event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        self._event("ping", {})
        for word in words:
            self._event(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}}
            )
            if fake.mode == "break-after-first-event":
                self.cut_connection()
                return
            time.sleep(fake.token_interval)
        self._event("content_block_stop", {"index": 0})
        self._event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": fake.tokens},
            },
        )
        self._event("message_stop", {})
        self.end_stream()


class AnthropicFake(FakeApi):
    """A fake Anthropic API accepting only `api_key`."""

    handler = _AnthropicHandler

    def __init__(self, *, api_key: str, tokens: int = 5) -> None:
        self.api_key = api_key
        super().__init__(reply="answer from anthropic one two three four", tokens=tokens)

    @property
    def continuation(self) -> str:
        """What it answers when asked to continue a prefilled answer."""
        return "".join(self.words(continuing=True))

    def words(self, *, continuing: bool = False) -> list[str]:
        """The answer's pieces; a continuation answers the rest, not the whole again."""
        if continuing:
            return [" and the rest", " from anthropic."]
        return list(super().words())

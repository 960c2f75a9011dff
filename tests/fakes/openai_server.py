"""A fake OpenAI-compatible model server (what vLLM serves) on loopback.

Routes: `POST /v1/chat/completions` (JSON, or server-sent events with `"stream": true`,
ending in `data: [DONE]`), `POST /v1/embeddings` (vectors of `fake_embedding`, as floats
or base64 float32 per `encoding_format`, as TEI answers), `GET /v1/models`,
`GET /health`. Every answer names the fake
(`name`) in its model id and text, so a test knows which backend answered.

Controls (attributes, changed while it runs): `mode` is `normal`, `down` (connections
reset at once), `hang` (accept and never answer, `/health` included),
`break-after-first-event` (a stream's
connection is cut after its first event; a non-stream request is cut before any byte)
`error` (HTTP 500), `rate-limited` (HTTP 429 with `Retry-After: retry_after`),
`error-event` (a stream sends one event, then an error event and `[DONE]`, as vLLM reports
a failure after its headers; a non-stream request gets HTTP 500),
`hang-after-headers` (a stream's headers leave, then nothing, as a wedged vLLM does; a
non-stream request hangs) or `hang-after-tokens` (a stream sends `hang_after` events,
then nothing; a non-stream request hangs);
asked to continue a partial answer (LiteLLM's mid-stream fallback), it answers the rest;
`spare_health_checks` answers the gateway's health checks normally whatever the mode (a
server that passes a one-token check and fails real work);
`no-endpoints` answers every request, `/health` included, after `failfast_seconds` with
a 503 carrying `l5d-proxy-error`, as the Linkerd proxy answers for a Service without ready
endpoints (a model scaled to zero, seen through the mesh);
`first_token_delay` and `token_interval` in seconds; `pause_seconds` > 0 pauses a stream
once, after its `pause_after`-th event (a healthy server's preempted sequence); `stop()`
takes it down (connection refused) and `start()` brings it back on the same port.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
from typing import Any

from tests.fakes.sse_server import FakeApi, FakeHandler

CREATED = 1_700_000_000
EMBEDDING_DIMENSIONS = 8


def fake_embedding(text: str) -> list[float]:
    """A deterministic unit-range vector per text, so a test can check what came back."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i] / 255 for i in range(EMBEDDING_DIMENSIONS)]


HEALTH_CHECK_PROMPTS = frozenset({"test from litellm", "Hey how's it going?", "What's 1 + 1?"})
"""What LiteLLM's background health checks ask (`litellm/constants.py`
`DEFAULT_HEALTH_CHECK_PROMPT`, `litellm/proxy/health_check.py` `_get_random_llm_message`);
they reach every local server every interval."""


def is_health_check(body: dict[str, Any]) -> bool:
    """A request the gateway's background health check sent."""
    messages = body.get("messages") or []
    return len(messages) == 1 and messages[0].get("content") in HEALTH_CHECK_PROMPTS


def continued_text(body: dict[str, Any]) -> str | None:
    """The partial answer a request asks to continue (a last assistant message marked
    `prefix`, as LiteLLM's mid-stream fallback sends), or None."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "assistant" and last.get("prefix"):
        return str(last.get("content", ""))
    return None


class _OpenAiHandler(FakeHandler):
    @property
    def openai(self) -> OpenAiFake:
        fake = self.fake
        assert isinstance(fake, OpenAiFake)
        return fake

    def _no_endpoints(self) -> None:
        """What the mesh's proxy answers for a Service without endpoints, after its queue's
        failfast timeout."""
        time.sleep(self.openai.failfast_seconds)
        data = json.dumps({"error": "service in fail-fast"}).encode()
        self.send_response(503)
        self.send_header("l5d-proxy-error", "service in fail-fast")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.openai.mode == "no-endpoints":
            self._no_endpoints()
        elif self.openai.mode == "hang":
            self.hang()
        elif self.path == "/health":
            self.send_json(200, {})
        elif self.path == "/v1/models":
            self.send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
                        for m in self.openai.models
                    ],
                },
            )
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if self.path == "/v1/embeddings":
            self._embeddings(self.read_json())
            return
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        body = self.read_json()
        fake = self.openai
        if fake.mode == "no-endpoints":
            self._no_endpoints()
            return
        if fake.spare_health_checks and is_health_check(body):
            self.send_json(200, self._completion(str(body.get("model", "unknown"))))
            return
        if fake.mode == "hang":
            self.hang()
            return
        if fake.mode == "error" or (fake.mode == "error-event" and not body.get("stream")):
            self.send_json(500, {"error": {"message": "fake backend error", "type": "server"}})
            return
        if fake.mode == "rate-limited":
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", str(fake.retry_after))
            data = json.dumps({"error": {"message": "fake rate limit", "type": "rate"}}).encode()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        model = str(body.get("model", "unknown"))
        if body.get("stream") and fake.mode == "hang-after-headers":
            self.start_stream()
            self.hang()
            return
        if fake.mode in ("hang-after-headers", "hang-after-tokens") and not body.get("stream"):
            self.hang()  # a wedged GPU answers no non-streaming request either
            return
        if body.get("stream"):
            # vLLM sends a stream's headers at once; the first event waits for the prefill.
            self.start_stream()
        time.sleep(fake.first_token_delay)
        if body.get("stream"):
            self._stream(model, body, fake.words(continuing=continued_text(body) is not None))
        elif fake.mode == "break-after-first-event":
            self.cut_connection()
        else:
            self.send_json(200, self._completion(model))

    def _embeddings(self, body: dict[str, Any]) -> None:
        """OpenAI's embeddings answer (TEI's `/v1/embeddings`), floats or base64 float32."""
        if self.openai.mode == "error":
            self.send_json(500, {"error": {"message": "fake backend error", "type": "server"}})
            return
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self.send_json(422, {"error": {"message": "input must be text", "type": "validation"}})
            return
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text)
            encoded: list[float] | str = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(text.split()) for text in texts)
        self.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "unknown")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _completion(self, model: str) -> dict[str, Any]:
        fake = self.openai
        return {
            "id": f"chatcmpl-{fake.name}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(fake.words())},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 7,
                "completion_tokens": fake.tokens,
                "total_tokens": 7 + fake.tokens,
            },
        }

    def _event(self, model: str, delta: dict[str, Any], finish: str | None) -> str:
        chunk = {
            "id": f"chatcmpl-{self.openai.name}",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n"

    def _stream(self, model: str, body: dict[str, Any], words: list[str]) -> None:
        fake = self.openai
        for i, word in enumerate(words):
            if fake.mode == "hang-after-tokens" and i == fake.hang_after:
                self.hang()
                return
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
            self.send_chunk(self._event(model, delta, None))
            if fake.mode == "break-after-first-event":
                self.cut_connection()
                return
            if fake.mode == "error-event":
                error = {
                    "message": "fake engine failure",
                    "type": "InternalServerError",
                    "code": 500,
                }
                self.send_chunk(f"data: {json.dumps({'error': error})}\n\n")
                self.send_chunk("data: [DONE]\n\n")
                self.end_stream()
                return
            time.sleep(fake.token_interval)
            if fake.pause_seconds > 0 and i + 1 == fake.pause_after:
                time.sleep(fake.pause_seconds)
        self.send_chunk(self._event(model, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "id": f"chatcmpl-{fake.name}",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": 7,
                    "completion_tokens": fake.tokens,
                    "total_tokens": 7 + fake.tokens,
                },
            }
            self.send_chunk(f"data: {json.dumps(usage)}\n\n")
        self.send_chunk("data: [DONE]\n\n")
        self.end_stream()


class OpenAiFake(FakeApi):
    """A fake vLLM: `name` marks its answers; `models` is what `/v1/models` lists."""

    handler = _OpenAiHandler

    def __init__(self, name: str, *, models: tuple[str, ...] = (), tokens: int = 5) -> None:
        self.name = name
        self.models = models or (name,)
        self.hang_after = 2
        self.retry_after = 1
        self.pause_after = 2
        self.pause_seconds = 0.0
        self.spare_health_checks = False
        self.failfast_seconds = 3.0
        super().__init__(reply=f"answer from {name} one two three four", tokens=tokens)

    @property
    def text(self) -> str:
        """The whole answer a request gets."""
        return "".join(self.words())

    @property
    def continuation(self) -> str:
        """What it answers when asked to continue a partial answer."""
        return "".join(self.words(continuing=True))

    def words(self, *, continuing: bool = False) -> list[str]:
        """The answer's pieces; a continuation answers the rest, not the whole again."""
        if continuing:
            return [" and the rest", f" from {self.name}."]
        return list(super().words())

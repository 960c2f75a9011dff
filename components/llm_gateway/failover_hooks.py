"""Proxy hooks the gateway's LiteLLM loads from its config directory (not imported by the
program: the ConfigMap carries this file next to `config.yaml`, and
`litellm_settings.callbacks` names `failover_hooks.proxy_handler_instance`; LiteLLM
1.83.14 loads it with `litellm/proxy/types_utils/utils.py` `get_instance_fn`).

They close two gaps of the pinned LiteLLM, both read in its source:

1. A stream that stalls after its headers (a wedged vLLM sends them at once, then
   nothing; or stops, or trickles, in the middle) hits the httpx read timeout (the
   deployment's `stream_timeout`, the model's first-token deadline). LiteLLM re-raises that
   timeout as it is, skipping its own mid-stream fallback
   (`litellm/litellm_core_utils/streaming_handler.py` `CustomStreamWrapper.__anext__`,
   `except httpx.TimeoutException: ... raise e`), and counts it for no cooldown
   (`litellm/router_utils/cooldown_handlers.py` `_is_cooldown_required`: no status). The
   client got a 500 or a truncated stream. `async_post_call_streaming_iterator_hook` (the
   proxy wraps every stream in it: `litellm/proxy/utils.py`
   `async_post_call_streaming_iterator_hook`) catches that timeout, puts the stalled
   deployment in cooldown (the router's `cooldown_cache`, shared through Redis on prod),
   and continues the answer from the group's fallback: the original messages when nothing
   was sent yet, else the partial answer as an assistant prefix, as LiteLLM's own
   mid-stream fallback does (`litellm/router.py` `_acompletion_streaming_iterator`).
2. When every deployment of a model fails, LiteLLM answers with the last provider's error
   (a 500 naming the provider) or, while all cool down, a 429. `async_post_call_failure_hook`
   (`litellm/proxy/utils.py` `post_call_failure_hook`: an HTTPException returned replaces
   the error) turns those into one 503 with `Retry-After` (the cooldown) and a message
   that names only the model the client asked for.

LiteLLM, httpx and FastAPI are the proxy's own packages; they are not dependencies of the
program, so their imports are untyped here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx  # type: ignore[import-not-found]
from fastapi import HTTPException  # type: ignore[import-not-found]
from litellm.integrations.custom_logger import CustomLogger  # type: ignore[import-not-found]

LOG = logging.getLogger("llm_platform.failover_hooks")

UNAVAILABLE_TYPE = "service_unavailable"

CONTINUE_PROMPT = (
    "You are a helpful assistant. You are given a message and you need to respond to it. "
    "You are also given a generated content. You need to respond to the message in "
    "continuation of the generated content. Do not repeat the same content. Your response "
    "should be in continuation of this text: "
)
"""LiteLLM's own continuation prompt (`litellm/router.py`, mid-stream fallback), so a
stream completed here reads like one LiteLLM completes itself."""

_NOT_FORWARDED = frozenset(
    {
        "litellm_logging_obj",
        "litellm_call_id",
        "messages",
        "stream",
        "model",
        # Written into the request by the router for the failed call (the chosen
        # deployment, its model_info); the fallback call picks its own.
        "deployment",
        "model_info",
    }
)
"""Request fields the fallback call sets itself or must not share with the failed call;
the rest (the client's parameters, the key's metadata for spend and budgets) go along."""

_UPSTREAM_ERRORS = (
    "InternalServerError",
    "ServiceUnavailableError",
    "APIConnectionError",
    "BadGatewayError",
    "Timeout",
    "RouterRateLimitError",
    "RateLimitError",
    "MidStreamFallbackError",
)
"""LiteLLM exception classes (`litellm/exceptions.py`, `litellm/types/router.py`) that mean
no deployment could answer; client errors (bad request, auth, budget) are left as they are."""


def _router() -> Any:
    from litellm.proxy import proxy_server  # type: ignore[import-not-found]

    return proxy_server.llm_router


def _delta_text(chunk: Any) -> str:
    text = ""
    for choice in getattr(chunk, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        content = getattr(delta, "content", None) if delta is not None else None
        if isinstance(content, str):
            text += content
    return text


def _deployment_id(request_data: dict[str, Any]) -> str | None:
    """The deployment that served the call (the router writes its `model_info` into the
    call's logging object, as `proxy/common_request_processing.py` `maybe_get_model_id`
    reads it)."""
    logging_obj = request_data.get("litellm_logging_obj")
    params = getattr(logging_obj, "litellm_params", None) or {}
    model_info = params.get("model_info") or (params.get("metadata") or {}).get("model_info")
    model_id = (model_info or {}).get("id")
    return str(model_id) if model_id else None


def _is_upstream_failure(error: Exception) -> bool:
    status = getattr(error, "status_code", None)
    named = any(type(error).__name__ == name for name in _UPSTREAM_ERRORS)
    return named or (isinstance(status, int) and status >= 500)


class FailoverHooks(CustomLogger):  # type: ignore[misc]
    """Stalled streams continue on the fallback; no deployment left is one honest 503."""

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: Any, request_data: dict[str, Any]
    ) -> AsyncIterator[Any]:
        sent = ""
        try:
            async for chunk in response:
                sent += _delta_text(chunk)
                yield chunk
            return
        except httpx.TimeoutException as error:
            stalled: Exception = error
        router = _router()
        group = request_data.get("model")
        messages = request_data.get("messages")
        if router is None or not isinstance(group, str) or not isinstance(messages, list):
            raise stalled
        model_id = _deployment_id(request_data)
        if model_id is not None:
            # 408: a timeout, as LiteLLM's router cools a timed-out deployment down.
            router.cooldown_cache.add_deployment_to_cooldown(
                model_id=model_id,
                original_exception=stalled,
                exception_status=408,
                cooldown_time=router.cooldown_time,
            )
        LOG.warning("stream of %s stalled on %s; continuing on its fallback", group, model_id)
        if sent:
            messages = [
                *messages,
                {"role": "system", "content": CONTINUE_PROMPT},
                {"role": "assistant", "content": sent, "prefix": True},
            ]
        forwarded = {k: v for k, v in request_data.items() if k not in _NOT_FORWARDED}
        fallback = await router.acompletion(
            model=group, messages=messages, stream=True, **forwarded
        )
        async for chunk in fallback:
            yield chunk

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: str | None = None,
    ) -> Any:
        if not _is_upstream_failure(original_exception):
            return None
        router = _router()
        retry_after = int(getattr(router, "cooldown_time", 10) or 10)
        model = request_data.get("model")
        name = f"model {model!r}" if isinstance(model, str) else "the requested model"
        unavailable = HTTPException(
            status_code=503,
            detail=f"No server can answer for {name} now; retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
        unavailable.type = UNAVAILABLE_TYPE
        unavailable.param = None
        return unavailable


proxy_handler_instance = FailoverHooks()

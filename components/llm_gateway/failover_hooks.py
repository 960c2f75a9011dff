"""Proxy hooks the gateway's LiteLLM loads from its config directory (not imported by the
program: the ConfigMap carries this file next to `config.yaml`, and
`litellm_settings.callbacks` names `failover_hooks.proxy_handler_instance`; LiteLLM
1.83.14 loads it with `litellm/proxy/types_utils/utils.py` `get_instance_fn`).

They close four gaps of the pinned LiteLLM, each read in its source:

1. LiteLLM cannot hold a call to a local server to the model's deadlines: it hands
   hosted_vllm one read timeout, which httpx applies to the headers and to every read
   alike, and vLLM sends a plain answer whole. `async_pre_call_deployment_hook` (run
   right before a deployment is called: `litellm/utils.py` `client` wrapper,
   `async_pre_call_deployment_hook`) gives each call to a deployment whose `model_info`
   carries `llm_platform_deadlines` an HTTP client whose transport enforces the
   first-token, idle and total deadlines and serves a plain request from a stream
   (`upstream_deadlines.py`, shipped beside this file, loaded from this directory).
   hosted_vllm uses a client it is handed (`litellm/llms/custom_httpx/llm_http_handler.py`
   `async_completion`, `make_async_call_stream_helper`: `client` when not None). A missed
   first token is a timeout of the call itself: the router's order-2 fallback answers and
   the failure counts towards `allowed_fails`.
2. A stream that stalls after its first event (stops or trickles mid-answer) ends in the
   transport's read timeout. LiteLLM re-raises that timeout as it is, skipping its own
   mid-stream fallback (`litellm/litellm_core_utils/streaming_handler.py`
   `CustomStreamWrapper.__anext__`, `except httpx.TimeoutException: ... raise e`), and
   counts it for no cooldown (`litellm/router_utils/cooldown_handlers.py`
   `_is_cooldown_required`: no status). `async_post_call_streaming_iterator_hook` (the
   proxy wraps every stream in it: `litellm/proxy/utils.py`
   `async_post_call_streaming_iterator_hook`) catches that timeout, puts the stalled
   deployment in cooldown (the router's `cooldown_cache`, shared through Redis on prod),
   and continues the answer from the group's fallback: the original messages when nothing
   was sent yet, else the partial answer as an assistant prefix, as LiteLLM's own
   mid-stream fallback does (`litellm/router.py` `_acompletion_streaming_iterator`).
3. When every deployment of a model fails, LiteLLM answers with the last provider's error
   (a 500 naming the provider) or, while all cool down, a 429. `async_post_call_failure_hook`
   (`litellm/proxy/utils.py` `post_call_failure_hook`: an HTTPException returned replaces
   the error) turns those into one 503 with `Retry-After` (the cooldown) and a message
   that names only the model the client asked for.
4. A cooldown that another replica wrote outlives its time here. The router keeps what
   it reads from Redis in its in-memory layer with that layer's default TTL, 600 s, not
   the cooldown's (`litellm/caching/dual_cache.py` `async_batch_get_cache` backfills
   without a TTL; `litellm/caching/in_memory_cache.py` `default_ttl`), and the cooldown
   filter does not look at the entry's timestamp (`litellm/router_utils/cooldown_cache.py`
   `async_get_active_cooldowns`): one replica's 10 s cooldown kept every other replica
   off a recovered server for ten minutes. `async_pre_call_hook` (run before routing,
   `litellm/proxy/utils.py` `pre_call_hook`) drops such copies once their cooldown is
   over, so the next read goes to Redis, which expires them on time.

LiteLLM and FastAPI are the proxy's own packages, not dependencies of the program, so
their imports are untyped here; httpx is the version the proxy runs, pinned in both.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from fastapi import HTTPException  # type: ignore[import-not-found]
from litellm.integrations.custom_logger import CustomLogger  # type: ignore[import-not-found]
from litellm.llms.custom_httpx.http_handler import (  # type: ignore[import-not-found]
    AsyncHTTPHandler,
    get_default_headers,
)
from litellm.router_utils.cooldown_cache import CooldownCache  # type: ignore[import-not-found]

LOG = logging.getLogger("llm_platform.failover_hooks")

DEADLINES_MODULE = "upstream_deadlines"


def _load_deadlines_module() -> ModuleType:
    """`upstream_deadlines.py` from this file's directory: LiteLLM loads this module by
    its path (`litellm/proxy/types_utils/utils.py` `get_instance_fn`), without putting the
    directory on `sys.path`."""
    loaded = sys.modules.get(DEADLINES_MODULE)
    if loaded is not None:
        return loaded
    path = Path(__file__).with_name(f"{DEADLINES_MODULE}.py")
    spec = importlib.util.spec_from_file_location(DEADLINES_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[DEADLINES_MODULE] = module
    spec.loader.exec_module(module)
    return module


upstream_deadlines = _load_deadlines_module()

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


def _forget_expired_cooldowns(router: Any) -> None:
    """Drop in-memory copies of cooldowns whose time is over (gap 4)."""
    memory = getattr(getattr(router, "cache", None), "in_memory_cache", None)
    if memory is None:
        return
    now = time.time()
    for model_id in router.get_model_ids():
        key = CooldownCache.get_cooldown_cache_key(model_id)
        value = memory.get_cache(key)
        if not isinstance(value, dict):
            continue
        ends = float(value.get("timestamp") or 0) + float(value.get("cooldown_time") or 0)
        if ends <= now:
            memory.delete_cache(key)


def _received_at(kwargs: dict[str, Any]) -> float | None:
    """When the proxy took the request (`time.time()`): its arrival as the proxy records
    it (`litellm/proxy/litellm_pre_call_utils.py` `add_litellm_data_to_request`), or the
    start of the call's logging object (`proxy/common_request_processing.py`)."""
    arrival = (kwargs.get("proxy_server_request") or {}).get("arrival_time")
    if isinstance(arrival, int | float):
        return float(arrival)
    start = getattr(kwargs.get("litellm_logging_obj"), "start_time", None)
    return start.timestamp() if isinstance(start, datetime) else None


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


class DeadlineClient(AsyncHTTPHandler):  # type: ignore[misc]
    """LiteLLM's HTTP client with the deadline transport; LiteLLM makes a fresh client with
    `create_client` when it retries a dropped connection, so the transport is put there."""

    def __init__(self, deadlines: Any) -> None:
        self.deadlines = deadlines
        super().__init__(timeout=deadlines.total)

    def create_client(
        self,
        timeout: Any,
        event_hooks: Any,
        ssl_verify: Any = None,
        shared_session: Any = None,
    ) -> httpx.AsyncClient:
        # What `AsyncHTTPHandler.create_client` sets, less TLS: local servers are plain HTTP
        # (the mesh encrypts in-cluster hops).
        transport = upstream_deadlines.DeadlineTransport(httpx.AsyncHTTPTransport(), self.deadlines)
        return httpx.AsyncClient(
            transport=transport,
            event_hooks=event_hooks,
            timeout=timeout if timeout is not None else self.deadlines.total,
            headers=get_default_headers(),
            follow_redirects=True,
        )


_clients: dict[Any, DeadlineClient] = {}
"""One client (one connection pool) per set of deadlines, for the life of the proxy."""


def _client_for(deadlines: Any) -> DeadlineClient:
    client = _clients.get(deadlines)
    if client is None:
        client = _clients[deadlines] = DeadlineClient(deadlines)
    return client


class FailoverHooks(CustomLogger):  # type: ignore[misc]
    """Local calls held to their deadlines; stalled streams continue on the fallback; no
    deployment left is one honest 503."""

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> None:
        router = _router()
        if router is not None:
            _forget_expired_cooldowns(router)

    async def async_pre_call_deployment_hook(
        self, kwargs: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        if getattr(call_type, "value", call_type) != "acompletion":
            return None
        deadlines = upstream_deadlines.Deadlines.from_model_info(kwargs.get("model_info"))
        if deadlines is None:
            return None
        received = _received_at(kwargs)
        if received is not None:
            upstream_deadlines.CALL_STARTED.set(received)
        return {**kwargs, "client": _client_for(deadlines)}

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

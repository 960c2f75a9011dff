"""The LiteLLM proxy configuration, generated from the typed stack config.

Local-first: every local model is served under its own name by its in-cluster vLLM
Service (or its LAN host), with its cloud fallback tried on errors and on context-window
overflow. Cloud models read their keys from environment variables (`os.environ/...`)
that the Deployment fills from Kubernetes Secrets, so the rendered YAML never holds a
secret. A model whose GPUs are in maintenance is served by its cloud fallback as the
primary, under the local name, so no request waits on a dead GPU.

Every key below was checked against litellm 1.83.14 (the pinned wheel):
`litellm/router.py` `Router.__init__` for `router_settings` (the proxy drops unknown
ones with a warning and refuses `health_check_interval` there),
`litellm/proxy/_types.py` `ConfigGeneralSettings` and `proxy_server.py` `load_config`
for `general_settings`, module attributes of `litellm` for `litellm_settings`,
`litellm/types/router.py` `RetryPolicy`, and `litellm/proxy/health_check.py` /
`proxy_server.py` for the `model_info` health-check keys.

Failover as the pinned LiteLLM does it (tests/live/test_litellm_proxy.py shows each
step): an error from a local backend (refused or cut connection, 5xx) is retried
`num_retries` times, then its cloud fallback answers. A timeout is not retried
(`retry_policy`), so a hanging backend costs one `timeout` (`stream_timeout` to the first
streamed token). More than `allowed_fails` failures within `cooldown_time` cool the
backend down: its requests go straight to the fallback for `cooldown_time`, then return.
A stream cut after its first event is continued by the fallback (LiteLLM's mid-stream
fallback sends the partial answer as an assistant prefix); without a fallback, or when
it fails too, the stream ends with an error event and no `[DONE]`. Both need
`disable_aiohttp_transport` (below).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from components.config import LocalModel, PlatformConfig
from components.data import embeddings
from components.inference.endpoints import model_api_bases
from components.llm_gateway.costs import local_token_cost

LOCAL_PROVIDER = "hosted_vllm"
"""LiteLLM's provider for vLLM's OpenAI-compatible server (`hosted_vllm/<served name>`)."""

LOCAL_API_KEY = "unused-in-cluster"
"""vLLM runs without `--api-key`: the mesh (mTLS, policy) guards it, not a bearer token.
Set explicitly so LiteLLM never sends some other provider's key from its environment."""

HEALTH_CHECK_MAX_TOKENS = 1


RETRY_BACKOFF_ENV: dict[str, str] = {"INITIAL_RETRY_DELAY": "0", "JITTER": "0"}
"""Environment of the proxy that sets LiteLLM's back-off before a retry (constants.py of
1.83.14; no config key reaches them) to none. Its router sleeps 0.5 s x 2^n plus up to
0.75 s of jitter before retrying a model group of one deployment, even when a fallback
is configured: every request that reaches a dead local backend before its cooldown
would wait 0.5-1.25 s for nothing. A `Retry-After` from a provider is still obeyed."""


def env_ref(name: str) -> str:
    """How LiteLLM's config reads an environment variable."""
    return f"os.environ/{name}"


def backend_model_name(name: str, model: LocalModel) -> str:
    """The model id the backend knows: the served name for vLLM in the cluster (started
    with `--served-model-name=<name>`), `backend_model` or else the Hugging Face repo for a
    LAN host."""
    if model.backend_model is not None:
        return model.backend_model
    return model.hf_repo if model.placement == "lan" else name


def _local_entry(
    name: str, model: LocalModel, api_base: str, config: PlatformConfig
) -> dict[str, Any]:
    router = config.llm_gateway.router
    cost = local_token_cost(config, name)
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"{LOCAL_PROVIDER}/{backend_model_name(name, model)}",
            "api_base": api_base,
            "api_key": LOCAL_API_KEY,
            "timeout": router.request_timeout_seconds,
            "stream_timeout": router.stream_timeout_seconds,
            # The router retries and falls back; the client underneath must not retry too.
            "max_retries": 0,
            "input_cost_per_token": cost.input_cost_per_token,
            "output_cost_per_token": cost.output_cost_per_token,
        },
        "model_info": {
            "id": f"local-{name}",
            "mode": "chat",
            "max_input_tokens": model.context_length,
            "health_check_timeout": router.stream_timeout_seconds,
            "health_check_max_tokens": HEALTH_CHECK_MAX_TOKENS,
        },
    }


def _cloud_entry(name: str, config: PlatformConfig, *, serves: str | None = None) -> dict[str, Any]:
    """A cloud model entry; `serves` puts it under a local model's name (maintenance)."""
    cloud = config.llm_gateway.cloud_models[name]
    router = config.llm_gateway.router
    return {
        "model_name": serves or name,
        "litellm_params": {
            "model": cloud.provider_model,
            "api_key": env_ref(cloud.api_key_env),
            "timeout": router.request_timeout_seconds,
            "stream_timeout": router.stream_timeout_seconds,
        },
        "model_info": {
            "id": f"cloud-{name}" if serves is None else f"maintenance-{serves}-{name}",
            "mode": "chat",
            "max_input_tokens": cloud.context_window,
            # Background checks of a paid API would bill every interval, per replica.
            "disable_background_health_check": True,
        },
    }


def _embeddings_entry(config: PlatformConfig, api_base: str) -> dict[str, Any]:
    """The data layer's embeddings server (TEI speaks OpenAI's `/v1/embeddings`)."""
    data = config.data
    router = config.llm_gateway.router
    return {
        "model_name": data.embeddings_model,
        "litellm_params": {
            "model": f"openai/{data.embeddings_model}",
            "api_base": api_base,
            "api_key": LOCAL_API_KEY,
            "timeout": router.request_timeout_seconds,
            "max_retries": 0,
        },
        "model_info": {"id": f"local-{data.embeddings_model}", "mode": "embedding"},
    }


def _model_list(
    config: PlatformConfig, bases: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, list[str]]], list[dict[str, list[str]]]]:
    """Model entries, fallbacks on errors and fallbacks on context-window overflow."""
    gateway = config.llm_gateway
    entries: list[dict[str, Any]] = []
    fallbacks: list[dict[str, list[str]]] = []
    context_fallbacks: list[dict[str, list[str]]] = []
    for name, model in sorted(config.inference.models.items()):
        fallback = model.cloud_fallback
        if config.model_in_maintenance(name):
            assert fallback is not None  # enforced by the config rules
            entries.append(_cloud_entry(fallback, config, serves=name))
            continue
        entries.append(_local_entry(name, model, bases[name], config))
        if fallback is None:
            continue
        fallbacks.append({name: [fallback]})
        if gateway.cloud_models[fallback].context_window > model.context_length:
            context_fallbacks.append({name: [fallback]})
    entries += [_cloud_entry(name, config) for name in sorted(gateway.cloud_models)]
    if config.data.enabled:
        name = config.data.embeddings_model
        entries.append(_embeddings_entry(config, bases.get(name, embeddings.api_base())))
    return entries, fallbacks, context_fallbacks


def render_litellm_config(
    config: PlatformConfig,
    *,
    api_bases: Mapping[str, str] | None = None,
    redis: bool | None = None,
) -> dict[str, Any]:
    """The proxy config as a dict.

    `api_bases` maps local model names (and the data layer's embeddings model) to their
    OpenAI-compatible base URL (default: the in-cluster Services of `model_api_bases` and
    the embeddings server's); `redis` turns the shared router state and
    cache on or off (default: `llm_gateway.uses_redis`).
    """
    gateway = config.llm_gateway
    router = gateway.router
    bases = dict(model_api_bases(config) if api_bases is None else api_bases)
    shared_state = gateway.uses_redis if redis is None else redis
    model_list, fallbacks, context_fallbacks = _model_list(config, bases)

    router_settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "num_retries": router.num_retries,
        "retry_policy": {"TimeoutErrorRetries": 0},
        "timeout": router.request_timeout_seconds,
        "stream_timeout": router.stream_timeout_seconds,
        "allowed_fails": router.allowed_fails,
        "cooldown_time": router.cooldown_seconds,
        "fallbacks": fallbacks,
        "context_window_fallbacks": context_fallbacks,
    }
    litellm_settings: dict[str, Any] = {
        "drop_params": True,
        "request_timeout": router.request_timeout_seconds,
        "json_logs": True,
        # Prompts and answers stay out of logs and callbacks; spend rows keep the counts.
        "turn_off_message_logging": True,
        # LiteLLM's default aiohttp transport ends a stream cut by the backend as if it had
        # finished (a truncated answer, then `finish_reason: stop` and `[DONE]`); httpx's
        # raises, and the proxy then ends the stream with an error event.
        "disable_aiohttp_transport": True,
        # Serves /metrics/ (requests, tokens, spend, fallbacks, cooldowns, latency): what
        # the gateway's scrape annotations and the dashboards read.
        "callbacks": ["prometheus"],
    }
    if shared_state:
        redis_settings = {
            "host": env_ref("REDIS_HOST"),
            "port": env_ref("REDIS_PORT"),
            "password": env_ref("REDIS_PASSWORD"),
        }
        # Cooldowns, failure counts and usage are shared by every replica through these.
        router_settings.update({f"redis_{k}": v for k, v in redis_settings.items()})
        litellm_settings["cache"] = True
        # Responses are cached only when a request asks for it.
        litellm_settings["cache_params"] = {
            "type": "redis",
            "mode": "default_off",
            **redis_settings,
        }

    return {
        "model_list": model_list,
        "litellm_settings": litellm_settings,
        "router_settings": router_settings,
        "general_settings": {
            "master_key": env_ref("LITELLM_MASTER_KEY"),
            "database_url": env_ref("DATABASE_URL"),
            "background_health_checks": True,
            "health_check_interval": router.health_check_interval_seconds,
            "disable_spend_logs": False,
        },
    }


def litellm_config_yaml(
    config: PlatformConfig,
    *,
    api_bases: Mapping[str, str] | None = None,
    redis: bool | None = None,
) -> str:
    """The proxy config as the YAML file the gateway mounts."""
    rendered = render_litellm_config(config, api_bases=api_bases, redis=redis)
    return "# Generated by llm-platform from the stack config; do not edit.\n" + yaml.safe_dump(
        rendered, sort_keys=False, default_flow_style=False, width=100
    )

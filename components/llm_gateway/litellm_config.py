"""The LiteLLM proxy configuration, generated from the typed stack config.

Local-first: every local model is served under its own name by its in-cluster vLLM
Service (or its LAN host), with its cloud fallback tried on errors and on context-window
overflow. Cloud models read their keys from environment variables (`os.environ/...`)
that the Deployment fills from Kubernetes Secrets, so the rendered YAML never holds a
secret. A model whose GPUs are in maintenance is served by its cloud fallback as the
primary, under the local name, so no request waits on a dead GPU.

Key names follow LiteLLM's proxy config reference (`model_list`, `litellm_settings`,
`router_settings`, `general_settings`) for the pinned release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from components.config import LocalModel, PlatformConfig
from components.inference.endpoints import model_api_bases
from components.llm_gateway.costs import local_token_cost

LOCAL_PROVIDER = "hosted_vllm"
"""LiteLLM's provider for OpenAI-compatible vLLM (and Ollama's OpenAI API) servers."""


def env_ref(name: str) -> str:
    """How LiteLLM's config reads an environment variable."""
    return f"os.environ/{name}"


def _local_entry(
    name: str, model: LocalModel, api_base: str, config: PlatformConfig
) -> dict[str, Any]:
    router = config.llm_gateway.router
    cost = local_token_cost(config, name)
    backend = model.backend_model or name
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"{LOCAL_PROVIDER}/{backend}",
            "api_base": api_base,
            "timeout": router.request_timeout_seconds,
            "stream_timeout": router.stream_timeout_seconds,
            "max_retries": 0,
            "input_cost_per_token": cost.input_cost_per_token,
            "output_cost_per_token": cost.output_cost_per_token,
        },
        "model_info": {
            "id": f"local-{name}",
            "mode": "chat",
            "max_input_tokens": model.context_length,
            "llm-platform-placement": model.placement,
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
        },
    }


def render_litellm_config(
    config: PlatformConfig,
    *,
    api_bases: Mapping[str, str] | None = None,
    redis: bool | None = None,
) -> dict[str, Any]:
    """The proxy config as a dict; `api_bases` overrides where local models are reached."""
    gateway = config.llm_gateway
    router = gateway.router
    bases = dict(model_api_bases(config) if api_bases is None else api_bases)
    shared_state = gateway.uses_redis if redis is None else redis

    model_list: list[dict[str, Any]] = []
    fallbacks: list[dict[str, list[str]]] = []
    for name, model in sorted(config.inference.models.items()):
        if config.model_in_maintenance(name):
            assert model.cloud_fallback is not None  # enforced by the config rules
            model_list.append(_cloud_entry(model.cloud_fallback, config, serves=name))
            continue
        model_list.append(_local_entry(name, model, bases[name], config))
        if model.cloud_fallback is not None:
            fallbacks.append({name: [model.cloud_fallback]})
    model_list += [_cloud_entry(name, config) for name in sorted(gateway.cloud_models)]

    router_settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "num_retries": router.num_retries,
        "timeout": router.request_timeout_seconds,
        "stream_timeout": router.stream_timeout_seconds,
        "allowed_fails": router.allowed_fails,
        "cooldown_time": router.cooldown_seconds,
        "fallbacks": fallbacks,
        "context_window_fallbacks": fallbacks,
    }
    litellm_settings: dict[str, Any] = {
        "drop_params": True,
        "request_timeout": router.request_timeout_seconds,
        "num_retries": router.num_retries,
        "json_logs": True,
        "turn_off_message_logging": True,
    }
    if shared_state:
        redis_settings = {
            "host": env_ref("REDIS_HOST"),
            "port": env_ref("REDIS_PORT"),
            "password": env_ref("REDIS_PASSWORD"),
        }
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

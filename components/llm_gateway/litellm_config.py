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

Failover as the pinned LiteLLM does it (tests/live/test_litellm_proxy.py and
tests/live/test_failover.py show each step). Each local model's name is one model group of
two deployments: the local server (`order: 1`) and its cloud fallback (`order: 2`,
`fallback-<model>-<cloud>`). The router picks the lowest order among the deployments it
considers healthy (`litellm/utils.py` `_get_order_filtered_deployments`) and, when the
local one fails, tries the next order (`litellm/router.py`
`_handle_fallbacks_common`, "ORDER-BASED FALLBACKS"). One group rather than two linked
by `fallbacks` because LiteLLM's exclusions never empty a group: health-check routing and
the cooldown filter both fall back to the whole group when every deployment in it is
excluded (`router.py` `_async_filter_health_check_unhealthy_deployments`, "bypassing
cooldown filter"), so a one-deployment group kept sending traffic to a dead server.

Deadlines come from the model (`components/inference/deadlines.py`): a local
deployment's `model_info` carries its first-token, stream-idle and total deadlines, which
the failover hooks enforce on the connection to the server, for plain requests too (they
ask vLLM for a stream and assemble the answer: `upstream_deadlines.py`). LiteLLM hands one
float to httpx for hosted_vllm (`litellm/litellm_core_utils/completion_timeout.py`
`CompletionTimeout.resolve` reduces an `httpx.Timeout` to its read part for every provider
but openai, azure and bedrock), which could not tell a first token from a pause, so the
deployment's own `timeout` and `stream_timeout` are only the outer bound, the total.
Cloud deployments get `stream_timeout_seconds` (sized for long generations) for both.

A failed request is not retried on the same deployment when it timed out
(`retry_policy`); every failure counts against `allowed_fails` within `cooldown_time`,
and one more failure cools the deployment down (`router_utils/cooldown_handlers.py`
`should_cooldown_based_on_allowed_fails_policy`, shared through Redis on prod by the
router's `cooldown_cache`). Background health checks (`max_tokens` 1, the first-token
deadline as their timeout) steer routing (`general_settings.enable_health_check_routing`,
`proxy/proxy_server.py` `_write_health_state_to_router_cache`): a failed check takes the
local deployment out at once, a passing one brings it back. No `allowed_fails_policy` is
rendered: with one set, the router skips the health-check filter
(`router.py` `_async_filter_health_check_unhealthy_deployments`). A stream cut after its
first event is continued by the fallback (LiteLLM's mid-stream fallback sends the partial
answer as an assistant prefix); when the fallback fails too, the stream ends with an error
event and no `[DONE]`. Both need `disable_aiohttp_transport` (below). A stream that
stalls mid-answer or trickles past the idle deadline is left to `failover_hooks.py`
(loaded through `litellm_settings.callbacks`): LiteLLM re-raises that read timeout with no
fallback and no cooldown, the hook cools the deployment down and finishes the stream from
the group. Prompts longer than
a local model serves skip it: `enable_pre_call_checks` drops deployments whose
`max_input_tokens` the prompt exceeds (`router.py` `_pre_call_checks`, counting with the
bundled tokenizer), leaving the cloud deployment of the group.

A model that autoscales to zero (`autoscaling.min: 0`) also gets a readiness gate in its
local `model_info` (`READINESS_KEY`), and the proxy the callback that honours it
(`readiness_hooks.py`): while the server is down the deployment is no candidate, so the
fallback answers at once. Without such a model neither is rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components.config import LocalModel, PlatformConfig
from components.config.mcp import header_env
from components.data import embeddings
from components.inference.deadlines import (
    first_token_deadline,
    served_context,
    stream_idle_deadline,
    total_deadline,
)
from components.inference.endpoints import model_api_bases
from components.llm_gateway.costs import local_token_cost

LOCAL_PROVIDER = "hosted_vllm"
"""LiteLLM's provider for vLLM's OpenAI-compatible server (`hosted_vllm/<served name>`)."""

LOCAL_API_KEY = "unused-in-cluster"
"""vLLM runs without `--api-key`: the mesh (mTLS, policy) guards it, not a bearer token.
Set explicitly so LiteLLM never sends some other provider's key from its environment."""

HEALTH_CHECK_MAX_TOKENS = 1

LOCAL_ORDER = 1
FALLBACK_ORDER = 2
"""`litellm_params.order` of a local model's two deployments: the router sends a request
to the lowest order it has left (`litellm/utils.py` `_get_order_filtered_deployments`)."""


REDIS_REREAD_SECONDS = 1.0
"""How stale a replica's view of the shared router state may be (cooldowns above all)."""


RETRY_BACKOFF_ENV: dict[str, str] = {"INITIAL_RETRY_DELAY": "0", "JITTER": "0"}
"""Environment of the proxy that sets LiteLLM's back-off before a retry (constants.py of
1.83.14; no config key reaches them) to none. Its router sleeps 0.5 s x 2^n plus up to
0.75 s of jitter before retrying a model group of one deployment, even when a fallback
is configured: every request that reaches a dead local backend before its cooldown
would wait 0.5-1.25 s for nothing. A `Retry-After` from a provider is still obeyed."""


OFFLINE_ENV: dict[str, str] = {
    # The price map bundled in the pinned package, not the one on GitHub
    # (`litellm/litellm_core_utils/get_model_cost_map.py` `get_model_cost_map`).
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # Anthropic's beta-header table from the package (`litellm/anthropic_beta_headers_manager.py`).
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    # The admin UI's news feed (`litellm/litellm_core_utils/get_blog_posts.py`).
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    # The admin UI's guardrail templates
    # (`litellm/proxy/management_endpoints/policy_endpoints/endpoints.py`).
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
}
"""Environment of the proxy that keeps every fetch LiteLLM 1.83.14 makes by default on
data bundled in its package. The Deployment and the test runner both set exactly these;
the Hugging Face tokenizer download is switched off in `litellm_settings`
(`disable_hf_tokenizer_download`). tests/live/test_failover.py runs the proxy with every
outbound connection but the fakes refused and sees no attempt."""


DEADLINES_KEY = "llm_platform_deadlines"
"""`model_info` key of a local deployment's deadlines, which the hooks read
(`upstream_deadlines.py` `Deadlines.from_model_info`; that module is not importable by
the program, which does not depend on httpx)."""

READINESS_KEY = "llm_platform_readiness"
"""`model_info` key of a local deployment whose server may run no replica (autoscaling
with `min: 0`): where and how often the readiness callback probes it (`readiness_gate.py`
`Gate.from_model_info`, loaded by `readiness_hooks.py`). While the probe fails the
callback keeps the deployment out of routing, so a request goes to the fallback at once
instead of to a Service without endpoints (through the Linkerd proxy such a request waits
for its queue's 3 s failfast)."""
READINESS_POLL_SECONDS = 1.0
READINESS_TIMEOUT_SECONDS = 1.0
"""A probe that takes longer counts as not ready: a loaded vLLM answers `/health` in
milliseconds, and a request queued by the mesh for a Service without endpoints would
wait the queue's 3 s."""

HOOKS_FILE = "failover_hooks.py"
"""The proxy hooks (`components/llm_gateway/failover_hooks.py`), shipped next to the
config file: LiteLLM resolves `<module>.<instance>` callbacks in the config's directory."""
HOOKS_CALLBACK = "failover_hooks.proxy_handler_instance"
HOOK_FILES = (HOOKS_FILE, "upstream_deadlines.py")
"""The hooks and the module they load from their own directory."""
READINESS_CALLBACK = "readiness_hooks.proxy_handler_instance"
READINESS_FILES = ("readiness_hooks.py", "readiness_gate.py")
"""The readiness callback and the module it loads, shipped only where a model has a gate."""


def is_gated(config: PlatformConfig, name: str) -> bool:
    """Whether a local model's server may run no replica (autoscaling with `min: 0`) and
    so gets a readiness gate."""
    scaling = config.inference.models[name].autoscaling
    return scaling is not None and scaling.min == 0 and not config.model_in_maintenance(name)


def gated_models(config: PlatformConfig) -> list[str]:
    """The local models with a readiness gate (`is_gated`), sorted."""
    return [name for name in config.autoscaled_models if is_gated(config, name)]


def hook_files(config: PlatformConfig | None = None) -> dict[str, str]:
    """The hooks' files by name, as the ConfigMap ships them next to the config: the
    readiness callback only where `config` gates a model (the test runner, without a
    config, ships every file)."""
    names = list(HOOK_FILES)
    if config is None or gated_models(config):
        names += READINESS_FILES
    return {name: Path(__file__).with_name(name).read_text() for name in names}


def env_ref(name: str) -> str:
    """How LiteLLM's config reads an environment variable."""
    return f"os.environ/{name}"


def backend_model_name(name: str, model: LocalModel) -> str:
    """The model id the backend knows: the served name for vLLM, in the cluster or on a
    LAN host (both started with `--served-model-name=<name>`), Ollama's own name of the
    model (`backend_model`) on an Ollama service."""
    return model.backend_model if model.backend_model is not None else name


def _local_entry(
    name: str, model: LocalModel, api_base: str, config: PlatformConfig
) -> dict[str, Any]:
    cost = local_token_cost(config, name)
    deadline = first_token_deadline(config, name)
    total = total_deadline(config, name)
    readiness = {READINESS_KEY: readiness_gate(api_base)} if is_gated(config, name) else {}
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"{LOCAL_PROVIDER}/{backend_model_name(name, model)}",
            "api_base": api_base,
            "api_key": LOCAL_API_KEY,
            # LiteLLM's own read timeout, streaming or not, is only the outer bound: the
            # hooks' transport holds the call to the deadlines in `model_info`.
            "timeout": total,
            "stream_timeout": total,
            # The router retries and falls back; the client underneath must not retry too.
            "max_retries": 0,
            "order": LOCAL_ORDER,
            "input_cost_per_token": cost.input_cost_per_token,
            "output_cost_per_token": cost.output_cost_per_token,
        },
        "model_info": {
            "id": f"local-{name}",
            "mode": "chat",
            # What vLLM serves (`--max-model-len` from the fit), not what was asked for.
            "max_input_tokens": served_context(config, name),
            "health_check_timeout": deadline,
            "health_check_max_tokens": HEALTH_CHECK_MAX_TOKENS,
            DEADLINES_KEY: {
                "first_token_seconds": deadline,
                "stream_idle_seconds": stream_idle_deadline(config, name),
                "total_seconds": total,
            },
            **readiness,
        },
    }


def readiness_gate(api_base: str) -> dict[str, Any]:
    """The probe of a server that may run no replica: its `/health` (vLLM answers 200 once
    its engine is up: `vllm/entrypoints/serve/instrumentator/health.py`, v0.33.0)."""
    root = api_base.removesuffix("/").removesuffix("/v1")
    return {
        "url": f"{root}/health",
        "poll_seconds": READINESS_POLL_SECONDS,
        "timeout_seconds": READINESS_TIMEOUT_SECONDS,
    }


def fallback_id(name: str, cloud: str) -> str:
    """`model_info.id` of the cloud deployment in a local model's group."""
    return f"fallback-{name}-{cloud}"


def _cloud_entry(
    name: str, config: PlatformConfig, *, serves: str | None = None, maintenance: bool = False
) -> dict[str, Any]:
    """A cloud model entry; `serves` puts it in a local model's group, as its fallback
    (`order: 2`) or, in `maintenance`, as the group's only deployment."""
    cloud = config.llm_gateway.cloud_models[name]
    router = config.llm_gateway.router
    if serves is None:
        entry_id = f"cloud-{name}"
    elif maintenance:
        entry_id = f"maintenance-{serves}-{name}"
    else:
        entry_id = fallback_id(serves, name)
    params: dict[str, Any] = {
        "model": cloud.provider_model,
        "api_key": env_ref(cloud.api_key_env),
        "timeout": router.request_timeout_seconds,
        "stream_timeout": router.stream_timeout_seconds,
    }
    if serves is not None and not maintenance:
        params["order"] = FALLBACK_ORDER
    return {
        "model_name": serves or name,
        "litellm_params": params,
        "model_info": {
            "id": entry_id,
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
) -> tuple[list[dict[str, Any]], list[dict[str, list[str]]]]:
    """Model entries and fallbacks on context-window overflow."""
    gateway = config.llm_gateway
    entries: list[dict[str, Any]] = []
    context_fallbacks: list[dict[str, list[str]]] = []
    for name, model in sorted(config.inference.models.items()):
        fallback = model.cloud_fallback
        if config.model_in_maintenance(name):
            assert fallback is not None  # enforced by the config rules
            entries.append(_cloud_entry(fallback, config, serves=name, maintenance=True))
            continue
        entries.append(_local_entry(name, model, bases[name], config))
        if fallback is None:
            continue
        entries.append(_cloud_entry(fallback, config, serves=name))
        # A prompt vLLM refuses as too long (ContextWindowExceededError skips the
        # order-based fallback in `router.py`) goes to the cloud model's own group.
        if gateway.cloud_models[fallback].context_window > served_context(config, name):
            context_fallbacks.append({name: [fallback]})
    entries += [_cloud_entry(name, config) for name in sorted(gateway.cloud_models)]
    if config.data.enabled:
        name = config.data.embeddings_model
        entries.append(_embeddings_entry(config, bases.get(name, embeddings.api_base())))
    return entries, context_fallbacks


def mcp_servers_section(
    config: PlatformConfig, urls: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """`mcp_servers` of the proxy config: each server's URL and transport, its secret
    headers as `os.environ/...` references and its tool allow-list.

    Keys as `load_servers_from_config` reads them (litellm 1.83.14,
    proxy/_experimental/mcp_server/mcp_server_manager.py); `static_headers` go with every
    call and win over any header a client sends, and the proxy resolves `os.environ/`
    references anywhere in its config (`proxy_server.py` `_check_for_os_environ_vars`).
    `allow_all_keys` stays off: a key reaches a server only when its `object_permission`
    lists it (the client's `mcp_servers`, `virtual_keys.py`), the master key reaches all.
    `urls` replaces servers' URLs by name (default: each server's `endpoint`)."""
    servers: dict[str, dict[str, Any]] = {}
    for name, server in sorted(config.llm_gateway.mcp_servers.items()):
        url = (urls or {}).get(name, server.endpoint)
        entry: dict[str, Any] = {"url": url, "transport": server.transport}
        if server.description:
            entry["description"] = server.description
        if server.secret_headers:
            entry["static_headers"] = {
                header: env_ref(header_env(name, header))
                for header in sorted(server.secret_headers)
            }
        if server.allowed_tools:
            entry["allowed_tools"] = sorted(server.allowed_tools)
        servers[name] = entry
    return servers


def render_litellm_config(
    config: PlatformConfig,
    *,
    api_bases: Mapping[str, str] | None = None,
    redis: bool | None = None,
    mcp_urls: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The proxy config as a dict.

    `api_bases` maps local model names (and the data layer's embeddings model) to their
    OpenAI-compatible base URL (default: the in-cluster Services of `model_api_bases` and
    the embeddings server's); `redis` turns the shared router state and
    cache on or off (default: `llm_gateway.uses_redis`); `mcp_urls` maps MCP server names
    to the URL the gateway calls (default: the configured Service or URL).
    """
    gateway = config.llm_gateway
    router = gateway.router
    bases = dict(model_api_bases(config) if api_bases is None else api_bases)
    shared_state = gateway.uses_redis if redis is None else redis
    model_list, context_fallbacks = _model_list(config, bases)

    router_settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "num_retries": router.num_retries,
        "retry_policy": {"TimeoutErrorRetries": 0},
        "timeout": router.request_timeout_seconds,
        "stream_timeout": router.stream_timeout_seconds,
        "allowed_fails": router.allowed_fails,
        "cooldown_time": router.cooldown_seconds,
        # Local models fall back within their own group (order 2); no cross-group list.
        "fallbacks": [],
        "context_window_fallbacks": context_fallbacks,
        # Drops deployments whose max_input_tokens a prompt exceeds, before the call.
        "enable_pre_call_checks": True,
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
        # and the failover hooks (stalled streams continue on the fallback; nothing left
        # to answer is one 503 with Retry-After): `failover_hooks.py`.
        "callbacks": [
            "prometheus",
            HOOKS_CALLBACK,
            *([READINESS_CALLBACK] if gated_models(config) else []),
        ],
        # Count tokens with the bundled tokenizer; never fetch one from the Hugging Face
        # Hub (`litellm/utils.py` `_select_tokenizer_helper`).
        "disable_hf_tokenizer_download": True,
    }
    if shared_state:
        redis_settings = {
            "host": env_ref("REDIS_HOST"),
            "port": env_ref("REDIS_PORT"),
            "password": env_ref("REDIS_PASSWORD"),
        }
        # Cooldowns, failure counts and usage are shared by every replica through these.
        router_settings.update({f"redis_{k}": v for k, v in redis_settings.items()})
        # A replica re-reads a key from Redis at most this often (10 s by default:
        # `litellm/caching/dual_cache.py` `_reserve_redis_batch_keys`), so a cooldown
        # another replica set is seen within a second, not after ten.
        litellm_settings["default_redis_batch_cache_expiry"] = REDIS_REREAD_SECONDS
        litellm_settings["cache"] = True
        # Responses are cached only when a request asks for it.
        litellm_settings["cache_params"] = {
            "type": "redis",
            "mode": "default_off",
            **redis_settings,
        }

    rendered: dict[str, Any] = {
        "model_list": model_list,
        "litellm_settings": litellm_settings,
        "router_settings": router_settings,
        "general_settings": {
            "master_key": env_ref("LITELLM_MASTER_KEY"),
            "database_url": env_ref("DATABASE_URL"),
            "background_health_checks": True,
            "health_check_interval": router.health_check_interval_seconds,
            # Failed checks take a deployment out of routing, passing ones bring it back
            # (`proxy/proxy_server.py` `_write_health_state_to_router_cache`); a state
            # older than three intervals counts as unknown (healthy).
            "enable_health_check_routing": True,
            "health_check_staleness_threshold": 3 * router.health_check_interval_seconds,
            "disable_spend_logs": False,
        },
    }
    if gateway.mcp_servers:
        rendered["mcp_servers"] = mcp_servers_section(config, mcp_urls)
    return rendered


def litellm_config_yaml(
    config: PlatformConfig,
    *,
    api_bases: Mapping[str, str] | None = None,
    redis: bool | None = None,
    mcp_urls: Mapping[str, str] | None = None,
) -> str:
    """The proxy config as the YAML file the gateway mounts."""
    rendered = render_litellm_config(config, api_bases=api_bases, redis=redis, mcp_urls=mcp_urls)
    return "# Generated by llm-platform from the stack config; do not edit.\n" + yaml.safe_dump(
        rendered, sort_keys=False, default_flow_style=False, width=100
    )

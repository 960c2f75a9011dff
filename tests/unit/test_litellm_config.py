"""The LiteLLM config renderer, local token costs and the gateway's config rules."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.config import ConfigError, PlatformConfig, parse_platform_config
from components.inference.deadlines import (
    IDLE_FACTOR,
    derived_first_token_deadline,
    first_token_deadline,
    served_context,
    stream_idle_deadline,
    total_deadline,
)
from components.inference.endpoints import VLLM_PORT
from components.inference.fit import estimate
from components.llm_gateway.costs import client_budget_usd, local_token_cost
from components.llm_gateway.litellm_config import (
    DEADLINES_KEY,
    FALLBACK_ORDER,
    HOOK_FILES,
    LOCAL_ORDER,
    OFFLINE_ENV,
    READINESS_CALLBACK,
    READINESS_FILES,
    READINESS_KEY,
    gated_models,
    hook_files,
    litellm_config_yaml,
    render_litellm_config,
)
from components.llm_gateway.readiness_gate import Gate
from components.llm_gateway.upstream_deadlines import Deadlines
from tests.support import load_stack_lines, secret_placeholder, stack_config, stack_values
from tools.mock_engine import PROJECT, config_for_engine


def _entries(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first (lowest-order) entry of each model group."""
    ids = [e["model_info"]["id"] for e in rendered["model_list"]]
    assert len(set(ids)) == len(ids), "model ids must be unique"
    entries: dict[str, dict[str, Any]] = {}
    for entry in rendered["model_list"]:
        entries.setdefault(entry["model_name"], entry)
    return entries


def _group(rendered: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in rendered["model_list"] if e["model_name"] == name]


def _errors(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(values)
    return list(caught.value.lines)


def _with_maintenance(stack: str, gpu_class: str) -> PlatformConfig:
    values = stack_values(stack)
    values["cluster"]["gpu_classes"][gpu_class]["maintenance"] = True
    return parse_platform_config(values)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_local_model_is_served_by_vllm_in_the_cluster_or_on_its_lan_host(
    stack: str,
) -> None:
    config = stack_config(stack)
    entries = _entries(render_litellm_config(config))
    for name, model in config.inference.models.items():
        params = entries[name]["litellm_params"]
        if model.placement == "lan":
            # The Compose file starts it with `--served-model-name=<name>`.
            assert params["model"] == f"hosted_vllm/{name}"
            assert params["api_base"] == (
                f"http://lan-{model.lan_host}.inference.svc.cluster.local:"
                f"{config.lan_port(name)}/v1"
            )
        else:
            assert params["model"] == f"hosted_vllm/{name}"
            assert params["api_base"] == (
                f"http://vllm-{name}.inference.svc.cluster.local:{VLLM_PORT}/v1"
            )
        assert not params["api_key"].startswith("os.environ/")
        # LiteLLM's own timeouts are the outer bound; the hooks enforce the model's deadlines.
        assert params["timeout"] == params["stream_timeout"] == total_deadline(config, name)
        deadlines = Deadlines.from_model_info(entries[name]["model_info"])
        assert deadlines == Deadlines(
            first_token=first_token_deadline(config, name),
            idle=stream_idle_deadline(config, name),
            total=total_deadline(config, name),
        )
        assert deadlines.first_token < deadlines.idle < deadlines.total
        assert entries[name]["model_info"]["health_check_timeout"] == deadlines.first_token
        assert entries[name]["model_info"]["max_input_tokens"] == served_context(config, name)


def test_max_input_tokens_is_the_context_vllm_serves_not_the_one_asked_for() -> None:
    config = stack_config("dev")
    model = config.inference.models["qwen3-4b"]
    fit = estimate(model, config.cluster.gpu_classes["rtx-3060"])
    # dev: 8192 asked, the fit shortens vLLM's --max-model-len.
    assert fit.max_model_len < model.context_length
    entry = _entries(render_litellm_config(config))["qwen3-4b"]
    assert entry["model_info"]["max_input_tokens"] == fit.max_model_len
    # ... and prompts over it are dropped from the local deployment before the call.
    assert render_litellm_config(config)["router_settings"]["enable_pre_call_checks"] is True


def test_first_token_deadline_is_derived_from_the_model_and_overridable() -> None:
    values = stack_values("dev")
    config = parse_platform_config(values)
    derived = first_token_deadline(config, "qwen3-4b")
    model = config.inference.models["qwen3-4b"]
    # Worst first token plus a prefill of the whole served context, a few seconds.
    assert model.first_token_seconds < derived < 10
    assert derived == derived_first_token_deadline(config, "qwen3-4b")
    # Twice the throughput: a shorter prefill, so an earlier (or equal) deadline.
    values["inference"]["models"]["qwen3-4b"]["tokens_per_second"] *= 4
    faster = parse_platform_config(values)
    assert first_token_deadline(faster, "qwen3-4b") < derived
    values["inference"]["models"]["qwen3-4b"]["tokens_per_second"] = model.tokens_per_second
    values["inference"]["models"]["qwen3-4b"]["first_token_deadline_seconds"] = 12.5
    pinned = parse_platform_config(values)
    assert first_token_deadline(pinned, "qwen3-4b") == 12.5
    entry = _entries(render_litellm_config(pinned))["qwen3-4b"]
    deadlines = entry["model_info"][DEADLINES_KEY]
    assert deadlines["first_token_seconds"] == 12.5
    # Pauses inside an answer may be longer than the first token (a preempted sequence).
    assert deadlines["stream_idle_seconds"] == IDLE_FACTOR * 12.5
    # The whole answer outlasts both but stays within the router's total.
    assert 12.5 * IDLE_FACTOR < deadlines["total_seconds"] == entry["litellm_params"]["timeout"]
    assert deadlines["total_seconds"] <= pinned.llm_gateway.router.request_timeout_seconds


def test_stream_idle_deadline_is_overridable_and_capped_by_the_total() -> None:
    values = stack_values("dev")
    model = values["inference"]["models"]["qwen3-4b"]
    model["stream_idle_timeout_seconds"] = 42.0
    assert stream_idle_deadline(parse_platform_config(values), "qwen3-4b") == 42.0
    values["llm_gateway"]["router"] = {"request_timeout_seconds": 30, "stream_timeout_seconds": 20}
    capped = parse_platform_config(values)
    assert stream_idle_deadline(capped, "qwen3-4b") == total_deadline(capped, "qwen3-4b") == 30
    model["stream_idle_timeout_seconds"] = 0
    assert any("stream_idle_timeout_seconds" in line for line in _errors(values))


def test_total_deadline_is_capped_by_the_request_timeout() -> None:
    values = stack_values("dev")
    values["llm_gateway"]["router"] = {"request_timeout_seconds": 30, "stream_timeout_seconds": 20}
    config = parse_platform_config(values)
    assert total_deadline(config, "qwen3-4b") == 30


def test_no_remote_fetch_is_left_on() -> None:
    rendered = render_litellm_config(stack_config("prod"))
    assert rendered["litellm_settings"]["disable_hf_tokenizer_download"] is True
    assert OFFLINE_ENV == {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
        "LITELLM_LOCAL_BLOG_POSTS": "True",
        "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    }


def test_api_bases_override_where_local_models_are_reached() -> None:
    config = stack_config("prod")
    bases = {
        name: f"http://127.0.0.1:{9000 + i}/v1" for i, name in enumerate(config.inference.models)
    }
    entries = _entries(render_litellm_config(config, api_bases=bases))
    assert {n: entries[n]["litellm_params"]["api_base"] for n in bases} == bases


def test_the_data_layer_embeddings_model_is_served_only_when_the_layer_is_on() -> None:
    prod = stack_config("prod")
    entry = _entries(render_litellm_config(prod))[prod.data.embeddings_model]
    assert entry["model_info"] == {"id": "local-bge-m3", "mode": "embedding"}
    assert entry["litellm_params"]["model"] == "openai/bge-m3"
    assert entry["litellm_params"]["api_base"] == "http://embeddings.data.svc.cluster.local:8080/v1"
    assert not entry["litellm_params"]["api_key"].startswith("os.environ/")
    # No fallback: a cloud model would return vectors of another space.
    fallbacks = render_litellm_config(prod)["router_settings"]["fallbacks"]
    assert all(prod.data.embeddings_model not in f for f in fallbacks)
    dev = stack_config("dev")
    assert not dev.data.enabled
    modes = {e["model_info"]["mode"] for e in render_litellm_config(dev)["model_list"]}
    assert modes == {"chat"}


def test_an_embeddings_model_named_like_a_chat_model_is_refused() -> None:
    values = stack_values("prod")
    values["data"]["embeddings_model"] = next(iter(values["inference"]["models"]))
    (line,) = [line for line in _errors(values) if "embeddings_model" in line]
    assert "data.embeddings_model" in line and "already names a chat model" in line


def test_local_token_cost_is_the_gpu_hour_spread_over_the_tokens_it_produces() -> None:
    config = stack_config("prod")
    entries = _entries(render_litellm_config(config))
    # qwen3-14b: two rtx-3090 GPUs at 700 tokens/s.
    hourly = config.cluster.gpu_classes["rtx-3090"].hourly_cost_usd * 2
    per_token = hourly / (3600 * 700)
    assert per_token > 0
    params = entries["qwen3-14b"]["litellm_params"]
    assert params["output_cost_per_token"] == pytest.approx(per_token)
    assert 0 < params["input_cost_per_token"] < params["output_cost_per_token"]
    for name in config.inference.models:
        cost = local_token_cost(config, name)
        assert entries[name]["litellm_params"]["output_cost_per_token"] == (
            cost.output_cost_per_token
        )


def test_doubling_throughput_halves_the_cost_per_token() -> None:
    values = stack_values("dev")
    before = local_token_cost(parse_platform_config(values), "qwen3-4b")
    values["inference"]["models"]["qwen3-4b"]["tokens_per_second"] *= 2
    after = local_token_cost(parse_platform_config(values), "qwen3-4b")
    assert after.output_cost_per_token == pytest.approx(before.output_cost_per_token / 2)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cloud_keys_come_from_the_environment_never_inline(stack: str) -> None:
    config = stack_config(stack)
    entries = _entries(render_litellm_config(config))
    for name, cloud in config.llm_gateway.cloud_models.items():
        params = entries[name]["litellm_params"]
        assert params["model"] == cloud.provider_model
        assert params["api_key"] == f"os.environ/{cloud.api_key_env}"
        assert entries[name]["model_info"]["disable_background_health_check"] is True
    text = litellm_config_yaml(config)
    for key in config.required_secrets():
        assert secret_placeholder(key) not in text
    general = render_litellm_config(config)["general_settings"]
    assert general["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert general["database_url"] == "os.environ/DATABASE_URL"


def test_each_local_model_falls_back_to_its_cloud_model_in_its_own_group() -> None:
    config = stack_config("prod")
    rendered = render_litellm_config(config)
    router = rendered["router_settings"]
    # No cross-group fallbacks: the cloud deployment is the group's second order.
    assert router["fallbacks"] == []
    for name, model in config.inference.models.items():
        assert model.cloud_fallback is not None
        local, fallback = _group(rendered, name)
        cloud = config.llm_gateway.cloud_models[model.cloud_fallback]
        assert local["model_info"]["id"] == f"local-{name}"
        assert local["litellm_params"]["order"] == LOCAL_ORDER
        assert fallback["model_info"]["id"] == f"fallback-{name}-{model.cloud_fallback}"
        assert fallback["litellm_params"]["order"] == FALLBACK_ORDER > LOCAL_ORDER
        assert fallback["litellm_params"]["model"] == cloud.provider_model
        assert fallback["model_info"]["disable_background_health_check"] is True
        assert fallback["model_info"]["max_input_tokens"] == cloud.context_window
    served = {e["model_name"] for e in rendered["model_list"]}
    for rule in router["context_window_fallbacks"]:
        ((source, targets),) = rule.items()
        assert source in served and set(targets) <= served


def test_health_checks_steer_routing() -> None:
    rendered = render_litellm_config(stack_config("prod"))
    general = rendered["general_settings"]
    assert general["enable_health_check_routing"] is True
    assert general["health_check_staleness_threshold"] == 3 * general["health_check_interval"]
    # An allowed_fails_policy would switch LiteLLM's health-check filter off.
    assert "allowed_fails_policy" not in rendered["router_settings"]


def test_context_window_fallback_only_to_a_larger_window() -> None:
    values = stack_values("dev")
    values["llm_gateway"]["cloud_models"]["claude-haiku"]["context_window"] = 4096
    small = render_litellm_config(parse_platform_config(values))
    assert small["router_settings"]["context_window_fallbacks"] == []
    assert len(_group(small, "qwen3-4b")) == 2  # still its fallback on errors
    large = render_litellm_config(stack_config("dev"))["router_settings"]
    assert large["context_window_fallbacks"] == [{"qwen3-4b": ["claude-haiku"]}]


def test_router_settings_follow_the_config() -> None:
    values = stack_values("dev")
    values["llm_gateway"]["router"] = {
        "num_retries": 3,
        "request_timeout_seconds": 120,
        "stream_timeout_seconds": 15,
        "allowed_fails": 4,
        "cooldown_seconds": 45,
        "health_check_interval_seconds": 20,
    }
    rendered = render_litellm_config(parse_platform_config(values))
    router = rendered["router_settings"]
    assert (router["num_retries"], router["timeout"], router["stream_timeout"]) == (3, 120, 15)
    assert (router["allowed_fails"], router["cooldown_time"]) == (4, 45)
    assert router["retry_policy"] == {"TimeoutErrorRetries": 0}
    assert rendered["litellm_settings"]["request_timeout"] == 120
    # LiteLLM refuses health-check keys under router_settings; they are general settings.
    assert "health_check_interval" not in router
    assert rendered["general_settings"]["health_check_interval"] == 20
    assert rendered["general_settings"]["background_health_checks"] is True
    assert rendered["general_settings"]["disable_spend_logs"] is False
    # Cloud deployments take the router's stream timeout; local ones their deadline.
    entries = _entries(rendered)
    assert entries["claude-haiku"]["litellm_params"]["stream_timeout"] == 15
    config = parse_platform_config(values)
    local = entries["qwen3-4b"]
    assert local["model_info"]["health_check_timeout"] == first_token_deadline(config, "qwen3-4b")


def test_streams_cut_by_a_backend_are_not_passed_off_as_finished() -> None:
    # With LiteLLM's default aiohttp transport a cut stream ends in a normal stop and
    # [DONE] (tests/live/test_litellm_proxy.py shows the behaviour this setting gives).
    settings = render_litellm_config(stack_config("dev"))["litellm_settings"]
    assert settings["disable_aiohttp_transport"] is True
    assert settings["turn_off_message_logging"] is True


@pytest.mark.parametrize(("redis", "expected"), [(True, True), (False, False), (None, None)])
def test_shared_state_in_redis_from_the_environment(redis: bool | None, expected: Any) -> None:
    config = stack_config("prod")
    rendered = render_litellm_config(config, redis=redis)
    uses = config.llm_gateway.uses_redis if expected is None else expected
    router = rendered["router_settings"]
    settings = rendered["litellm_settings"]
    if uses:
        assert router["redis_host"] == "os.environ/REDIS_HOST"
        assert router["redis_port"] == "os.environ/REDIS_PORT"
        assert router["redis_password"] == "os.environ/REDIS_PASSWORD"
        assert settings["cache"] is True
        assert settings["cache_params"]["type"] == "redis"
        assert settings["cache_params"]["mode"] == "default_off"
        assert settings["cache_params"]["password"] == "os.environ/REDIS_PASSWORD"
    else:
        assert not any(key.startswith("redis") for key in router)
        assert "cache" not in settings and "cache_params" not in settings


def test_dev_runs_without_redis_and_prod_with_it() -> None:
    assert "redis_host" not in render_litellm_config(stack_config("dev"))["router_settings"]
    assert "redis_host" in render_litellm_config(stack_config("prod"))["router_settings"]


def test_gpu_maintenance_serves_the_model_name_from_its_cloud_fallback() -> None:
    config = _with_maintenance("prod", "rtx-3090")
    assert config.model_in_maintenance("qwen3-14b")
    rendered = render_litellm_config(config)
    entries = _entries(rendered)
    entry = entries["qwen3-14b"]
    haiku = config.llm_gateway.cloud_models["claude-haiku"]
    assert entry["litellm_params"]["model"] == haiku.provider_model
    assert entry["litellm_params"]["api_key"] == f"os.environ/{haiku.api_key_env}"
    assert "api_base" not in entry["litellm_params"]
    assert entry["model_info"]["id"] == "maintenance-qwen3-14b-claude-haiku"
    assert len(_group(rendered, "qwen3-14b")) == 1
    assert all("qwen3-14b" not in rule for rule in rendered["router_settings"]["fallbacks"])
    # The other models are untouched.
    assert entries["qwen3-8b"]["litellm_params"]["model"] == "hosted_vllm/qwen3-8b"
    assert entries["claude-haiku"]["model_info"]["id"] == "cloud-claude-haiku"


def test_lan_host_maintenance_moves_its_model_to_the_cloud() -> None:
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["maintenance"] = True
    entries = _entries(render_litellm_config(parse_platform_config(values)))
    assert entries["llama-3-1-8b"]["litellm_params"]["model"] == "openai/gpt-4.1-mini"


def test_client_budgets_tighten_while_their_models_are_in_maintenance() -> None:
    normal = stack_config("prod")
    maintenance = _with_maintenance("prod", "rtx-3090")
    cap = maintenance.llm_gateway.maintenance_budget_usd
    assert cap < normal.clients["web-app"].max_budget_usd
    assert client_budget_usd(normal, "web-app") == normal.clients["web-app"].max_budget_usd
    # web-app may call every model, batch-jobs names qwen3-14b: both are capped.
    assert client_budget_usd(maintenance, "web-app") == cap
    assert client_budget_usd(maintenance, "batch-jobs") == cap
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["maintenance"] = True
    lan_down = parse_platform_config(values)
    # batch-jobs does not use the LAN model, so its budget stays.
    assert (
        client_budget_usd(lan_down, "batch-jobs") == lan_down.clients["batch-jobs"].max_budget_usd
    )
    assert client_budget_usd(lan_down, "web-app") == cap


def test_yaml_is_the_rendered_dict_and_deterministic() -> None:
    config = stack_config("prod")
    text = litellm_config_yaml(config)
    assert text == litellm_config_yaml(stack_config("prod"))
    assert yaml.safe_load(text) == render_litellm_config(config)


# --- config errors -----------------------------------------------------------------


def test_fallback_to_a_model_that_does_not_exist_is_refused() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["cloud_fallback"] = "claude-opus"
    (line,) = [line for line in _errors(values) if "cloud_fallback" in line]
    assert "inference.models.qwen3-4b.cloud_fallback" in line
    assert "no such cloud model" in line and "claude-haiku" in line


def test_a_deadline_shorter_than_the_first_token_time_is_refused() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["first_token_deadline_seconds"] = 1
    lines = _errors(values)
    assert any(
        "inference.models.qwen3-4b.first_token_deadline_seconds" in line for line in lines
    ), lines


def test_allowed_fails_equal_to_litellms_default_is_refused() -> None:
    values = stack_values("dev")
    values["llm_gateway"]["router"] = {"allowed_fails": 3}
    lines = _errors(values)
    assert any("llm_gateway.router.allowed_fails" in line for line in lines), lines


def test_a_first_token_time_beyond_the_request_timeout_is_refused() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["first_token_seconds"] = 20
    values["llm_gateway"]["router"] = {"request_timeout_seconds": 15, "stream_timeout_seconds": 10}
    lines = _errors(values)
    assert any(
        "llm_gateway.router.request_timeout_seconds" in line and "qwen3-4b" in line
        for line in lines
    ), lines


def test_request_timeout_shorter_than_the_stream_timeout_is_refused() -> None:
    values = stack_values("dev")
    values["llm_gateway"]["router"] = {"request_timeout_seconds": 5, "stream_timeout_seconds": 10}
    lines = _errors(values)
    assert any("llm_gateway.router.request_timeout_seconds" in line for line in lines), lines


def test_two_secrets_in_one_key_variable_are_refused() -> None:
    values = stack_values("prod")
    values["llm_gateway"]["cloud_models"]["gpt-mini"]["api_key_env"] = "ANTHROPIC_API_KEY"
    lines = _errors(values)
    assert any("llm_gateway.cloud_models.gpt-mini.api_key_env" in line for line in lines), lines


def test_cloud_model_without_its_key_stops_the_program() -> None:
    values = stack_values("dev")
    engine = config_for_engine(values)
    secrets = [k for k in stack_config("dev").required_secrets() if k != "anthropic_api_key"]
    for key in secrets:
        engine[f"{PROJECT}:{key}"] = secret_placeholder(key)

    lines = load_stack_lines("dev", engine, [f"{PROJECT}:{key}" for key in secrets])
    assert any("anthropic_api_key" in line and "secret is not set" in line for line in lines)


# --- models that autoscale to zero ---------------------------------------------------------


def test_a_model_that_scales_to_zero_carries_a_readiness_gate_and_the_proxy_its_callback() -> None:
    config = stack_config("prod")
    rendered = render_litellm_config(config)
    local = {
        e["model_name"]: e["model_info"]
        for e in rendered["model_list"]
        if str(e["model_info"]["id"]).startswith("local-")
    }
    gated = {name for name, info in local.items() if READINESS_KEY in info}
    assert gated == {"qwen3-14b"} == set(gated_models(config))
    gate = Gate.from_model_info(local["qwen3-14b"])
    assert gate is not None
    # vLLM's /health behind the model's Service, the Service the gateway calls.
    assert gate.url == f"http://vllm-qwen3-14b.inference.svc.cluster.local:{VLLM_PORT}/health"
    api_base = _group(rendered, "qwen3-14b")[0]["litellm_params"]["api_base"]
    assert gate.url == api_base.removesuffix("/v1") + "/health"
    assert gate.timeout_seconds <= gate.poll_seconds
    assert rendered["litellm_settings"]["callbacks"][-1] == READINESS_CALLBACK
    assert set(hook_files(config)) == {*HOOK_FILES, *READINESS_FILES}


def test_without_such_a_model_neither_gate_nor_callback_is_rendered() -> None:
    dev = stack_config("dev")
    rendered = render_litellm_config(dev)
    assert all(READINESS_KEY not in e["model_info"] for e in rendered["model_list"])
    assert READINESS_CALLBACK not in rendered["litellm_settings"]["callbacks"]
    assert set(hook_files(dev)) == set(HOOK_FILES)
    # A warm minimum needs no gate: a replica always runs.
    values = stack_values("prod")
    values["inference"]["models"]["qwen3-14b"]["autoscaling"]["min"] = 1
    assert gated_models(parse_platform_config(values)) == []
    # In maintenance the cloud model is the group's only deployment: nothing to gate.
    assert gated_models(_with_maintenance("prod", "rtx-3090")) == []


def test_the_gate_follows_the_api_base_the_tests_give() -> None:
    rendered = render_litellm_config(
        stack_config("prod"), api_bases={"qwen3-14b": "http://127.0.0.1:9/v1"} | _lan_bases()
    )
    entry = _group(rendered, "qwen3-14b")[0]
    assert entry["model_info"][READINESS_KEY]["url"] == "http://127.0.0.1:9/health"


def _lan_bases() -> dict[str, str]:
    config = stack_config("prod")
    return {
        name: f"http://127.0.0.1:{10 + i}/v1"
        for i, name in enumerate(sorted(config.inference.models))
        if name != "qwen3-14b"
    } | {config.data.embeddings_model: "http://127.0.0.1:8/v1"}

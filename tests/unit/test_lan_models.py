"""Models on LAN GPU hosts and the escape hatches: the fit, the gateway and the host's
Compose file from one estimate, and each bad case a config error naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.cluster.lan_compose import compose_document
from components.config import ConfigError, parse_platform_config
from components.config.names import kubernetes_name
from components.inference.deadlines import served_context
from components.inference.fit import USABLE_FRACTION
from components.inference.fit_report import fit_line, fit_rows
from components.llm_gateway.litellm_config import render_litellm_config
from tests.support import stack_config, stack_values


def _errors(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    return list(raised.value.lines)


def _paths(lines: list[str]) -> set[str]:
    return {line.split(": ", 2)[1] for line in lines}


def _local_entries(config: Any) -> dict[str, Any]:
    return {
        e["model_info"]["id"].removeprefix("local-"): e
        for e in render_litellm_config(config)["model_list"]
        if e["model_info"]["id"].startswith("local-")
    }


def _arg(command: list[str], flag: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in command if a.startswith(f"--{flag}=")]
    return value


def test_two_models_on_two_ports_get_compose_and_gateway_routes_from_one_fit() -> None:
    config = stack_config("prod")
    compose = compose_document(config, "workstation")["services"]
    entries = _local_entries(config)
    lan = ["Qwen3-4B", "llama-3-1-8b"]
    assert sorted(config.lan_models("workstation")) == lan
    total = 0.0
    for name in lan:
        fit = config.model_fit(name)
        assert fit is not None
        service = compose[f"vllm-{kubernetes_name(name)}"]
        command = service["command"]
        assert _arg(command, "served-model-name") == name
        assert int(_arg(command, "max-model-len")) == fit.max_model_len
        assert float(_arg(command, "gpu-memory-utilization")) == fit.gpu_memory_utilization
        assert int(_arg(command, "tensor-parallel-size")) == 2  # all of the host's GPUs
        (port,) = service["ports"]
        assert int(port["published"]) == config.lan_port(name)
        entry = entries[name]
        assert entry["model_info"]["max_input_tokens"] == fit.max_model_len
        assert entry["litellm_params"]["api_base"].endswith(f":{config.lan_port(name)}/v1")
        assert entry["litellm_params"]["model"] == f"hosted_vllm/{name}"
        total += fit.gpu_memory_utilization
    # Both processes on the same two GPUs stay within the usable share together.
    assert total <= USABLE_FRACTION


def _shortened_lan_values() -> dict[str, Any]:
    values = stack_values("prod")
    values["inference"]["models"]["Qwen3-4B"]["context_length"] = 40960
    return values


def test_a_host_too_small_for_both_shortens_them_and_the_gateway_advertises_it() -> None:
    config = parse_platform_config(_shortened_lan_values())
    for name in ("Qwen3-4B", "llama-3-1-8b"):
        fit = config.model_fit(name)
        assert fit is not None and fit.fits
        assert served_context(config, name) == fit.max_model_len
    qwen = config.model_fit("Qwen3-4B")
    assert qwen is not None and qwen.max_model_len < 40960
    entries = _local_entries(config)
    assert entries["Qwen3-4B"]["model_info"]["max_input_tokens"] == qwen.max_model_len
    (row,) = [r for r in fit_rows(config) if r.model == "Qwen3-4B"]
    assert row.shortened
    assert f"context {qwen.max_model_len}/40960 (shortened)" in fit_line(row)


def test_strict_context_turns_a_shortened_context_into_an_error() -> None:
    values = _shortened_lan_values()
    values["inference"]["strict_context"] = True
    lines = _errors(values)
    assert "inference.models.Qwen3-4B.context_length" in _paths(lines)
    # A model's own setting wins over the global one.
    values["inference"]["models"]["Qwen3-4B"]["strict_context"] = False
    values["inference"]["models"]["llama-3-1-8b"]["strict_context"] = False
    parse_platform_config(values)
    dev = stack_values("dev")  # the dev model is shortened to fit a 12 GB card
    dev["inference"]["models"]["qwen3-4b"]["strict_context"] = True
    (line,) = _errors(dev)
    assert line.startswith("config error: inference.models.qwen3-4b.context_length: only 7424")


def test_models_that_cannot_share_a_host_are_refused_naming_the_host() -> None:
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["gpu_count"] = 1
    lines = _errors(values)
    assert "inference.models.llama-3-1-8b" in _paths(lines)
    assert any("LAN host 'workstation' beside ['Qwen3-4B']" in line for line in lines)


def test_two_vllm_models_on_one_port_and_a_port_used_twice() -> None:
    values = stack_values("prod")
    values["inference"]["models"]["Qwen3-4B"]["lan_port"] = 8000
    lines = _errors(values)
    assert _paths(lines) == {
        "inference.models.llama-3-1-8b.lan_port",
        "cluster.lan_gpu_hosts.workstation.services.1",
    }
    assert any("vLLM service, which serves one model" in line for line in lines)
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["services"][1]["port"] = 8000
    (line,) = _errors(values)
    assert line.startswith(
        "config error: cluster.lan_gpu_hosts.workstation.services.1.port: port 8000 is "
        "already used by services.0"
    )


def test_the_port_of_a_model_must_be_a_service_of_its_host() -> None:
    values = stack_values("prod")
    del values["inference"]["models"]["Qwen3-4B"]["lan_port"]
    assert "inference.models.Qwen3-4B.lan_port" in _paths(_errors(values))
    values["inference"]["models"]["Qwen3-4B"]["lan_port"] = 9000
    lines = _errors(values)
    assert any("runs no service on this port; its services: [8000, 8001]" in x for x in lines)


def test_a_lan_model_uses_all_of_its_hosts_gpus() -> None:
    values = stack_values("prod")
    values["inference"]["models"]["Qwen3-4B"]["gpu_count"] = 1
    (line,) = _errors(values)
    assert line.startswith("config error: inference.models.Qwen3-4B.gpu_count:")


def _ollama_values() -> dict[str, Any]:
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["services"][1] = {
        "port": 11434,
        "server": "ollama",
    }
    qwen = values["inference"]["models"]["Qwen3-4B"]
    del qwen["extra_args"]
    qwen.update(lan_port=11434, backend_model="qwen3:4b", context_length=4096)
    values["inference"]["models"]["qwen3-small"] = {
        **qwen,
        "backend_model": "qwen3:4b-q4_K_M",
        "weight_format": "gptq-int4",
    }
    return values


def test_an_ollama_service_serves_several_models_with_one_context() -> None:
    config = parse_platform_config(_ollama_values())
    served = {served_context(config, n) for n in ("Qwen3-4B", "qwen3-small")}
    assert len(served) == 1  # one OLLAMA_CONTEXT_LENGTH for the server
    services = compose_document(config, "workstation")["services"]
    server = services["ollama-11434"]
    assert server["environment"]["OLLAMA_CONTEXT_LENGTH"] == str(served.pop())
    assert server["environment"]["OLLAMA_MAX_LOADED_MODELS"] == "2"
    pulls = {s["command"][1] for n, s in services.items() if "-pull-" in n}
    assert pulls == {"qwen3:4b", "qwen3:4b-q4_K_M"}
    entries = _local_entries(config)
    assert entries["qwen3-small"]["litellm_params"]["model"] == "hosted_vllm/qwen3:4b-q4_K_M"


def test_ollama_models_need_their_ollama_name_and_one_concurrency() -> None:
    values = _ollama_values()
    del values["inference"]["models"]["qwen3-small"]["backend_model"]
    values["inference"]["models"]["qwen3-small"]["max_concurrent_sequences"] = 2
    assert _paths(_errors(values)) == {
        "inference.models.qwen3-small.backend_model",
        "inference.models.qwen3-small.max_concurrent_sequences",
        "inference.models.Qwen3-4B.max_concurrent_sequences",
    }


@pytest.mark.parametrize("name", ["qwen3", "qwen3:latest", "hf.co/Qwen/Qwen3-8B-GGUF"])
def test_an_ollama_model_names_a_tag_that_is_not_latest(name: str) -> None:
    values = _ollama_values()
    values["inference"]["models"]["qwen3-small"]["backend_model"] = name
    (line,) = _errors(values)
    assert line.startswith("config error: inference.models.qwen3-small.backend_model: name an")
    assert "cannot pin a digest" in line


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?", fullmatch=True))
def test_a_served_name_that_is_a_dns_label_is_its_own_kubernetes_name(name: str) -> None:
    assert kubernetes_name(name) == name


def test_served_names_keep_dots_and_case_and_kubernetes_names_are_derived() -> None:
    assert kubernetes_name("llama-3.1-8b") == "llama-3-1-8b"
    assert kubernetes_name("Qwen3_8B") == "qwen3-8b"
    # A name that is a DNS label already keeps it, so existing models keep their objects.
    assert kubernetes_name("qwen3--8b") == "qwen3--8b"
    values = stack_values("dev")
    values["inference"]["models"]["Qwen3.4B"] = values["inference"]["models"].pop("qwen3-4b")
    config = parse_platform_config(values)
    entries = _local_entries(config)
    assert entries["Qwen3.4B"]["litellm_params"]["api_base"].startswith(
        "http://vllm-qwen3-4b.inference.svc"
    )
    values["inference"]["models"]["qwen3-4b"] = dict(values["inference"]["models"]["Qwen3.4B"])
    lines = _errors(values)
    assert any("its Kubernetes name 'qwen3-4b' is that of model" in line for line in lines)
    values = stack_values("dev")
    values["inference"]["models"]["qwen3/4b"] = values["inference"]["models"].pop("qwen3-4b")
    assert "inference.models.qwen3/4b" in {p.rsplit(".", 1)[0] for p in _paths(_errors(values))}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--max-model-len=4096"], "--max-model-len is set by the platform: derived by the fit"),
        (["--no-enable-prefix-caching"], "set from prefix_caching"),
        (["--api-key=x"], "--api-key is refused"),
        (["--tool-call-parsr=hermes"], "not a vLLM option this project has checked"),
        (["--tool-call-parser"], "takes a value"),
        (["--enforce-eager=true"], "is a switch"),
        (["--no-enforce-eager"], "not a vLLM option"),
        (["--enable-auto-tool-choice"], "needs --tool-call-parser"),
        (["--tool-call-parser", "hermes"], "write each option as --flag or --flag=value"),
        (["--max-num-batched-tokens=lots"], "takes a positive whole number"),
        (["--max-num-batched-tokens=0"], "takes a positive whole number"),
    ],
)
def test_extra_args_are_refused_with_the_reason(args: list[str], fragment: str) -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["extra_args"] = args
    lines = _errors(values)
    assert any(fragment in line for line in lines), lines
    assert all(".extra_args." in line for line in lines)


def test_checked_extra_args_reach_the_server() -> None:
    config = stack_config("prod")
    command = compose_document(config, "workstation")["services"]["vllm-qwen3-4b"]["command"]
    assert command[-3:] == [
        "--enable-auto-tool-choice",
        "--tool-call-parser=hermes",
        "--reasoning-parser=qwen3",
    ]


@pytest.mark.parametrize(
    "image",
    ["docker.io/vllm/vllm-openai", "docker.io/vllm/vllm-openai:latest", "vllm-openai:v1.0"],
)
def test_an_image_override_must_be_pinned(image: str) -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["image"] = image
    (line,) = _errors(values)
    assert line.startswith("config error: inference.models.qwen3-4b.image: not pinned")


def test_the_token_is_asked_for_only_when_the_platform_downloads_a_gated_model() -> None:
    assert "huggingface_token" in stack_config("prod").required_secrets()  # managed host
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["managed"] = False
    assert "huggingface_token" not in parse_platform_config(values).required_secrets()
    values["inference"]["models"]["qwen3-8b"]["gated"] = True  # a cluster model
    assert "huggingface_token" in parse_platform_config(values).required_secrets()


def test_a_managed_host_needs_bootstrap_mode() -> None:
    values = stack_values("prod")
    values["cluster"]["mode"] = "existing"
    values["cluster"].pop("api_endpoint")
    (line,) = _errors(values)
    assert line.startswith("config error: cluster.lan_gpu_hosts.workstation.managed: needs")

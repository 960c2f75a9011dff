"""The inference area under the recording mocks: one vLLM server per in-cluster model."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pytest

from components.inference.fit import estimate
from components.inference.model_server import (
    GPU_CLASS_LABEL,
    cluster_models,
    server_plan,
    startup_seconds,
)
from components.inference.vllm_args import vllm_args
from tests.support import run_stack, stack_config, stack_values
from tests.unit.manifest_checks import validate_core
from tools.mock_engine import ProgramRun, RecordedResource

StackRun = Callable[[str], ProgramRun]
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _servers(run: ProgramRun) -> dict[str, RecordedResource]:
    return {
        r.inputs["metadata"]["name"]: r
        for r in run.of_type(DEPLOYMENT)
        if r.inputs["metadata"]["namespace"] == "inference"
    }


def _arg(container: dict[str, Any], flag: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"--{flag}=")]
    return value


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_server_per_cluster_model_and_none_for_lan_models(
    stack_run: StackRun, stack: str
) -> None:
    config = stack_config(stack)
    servers = _servers(stack_run(stack))
    assert set(servers) == {f"vllm-{n}" for n in cluster_models(config)}
    lan = [n for n, m in config.inference.models.items() if m.placement == "lan"]
    assert all(f"vllm-{n}" not in servers for n in lan)


def test_dev_serves_one_small_model_prod_several_across_gpu_classes(stack_run: StackRun) -> None:
    assert len(_servers(stack_run("dev"))) == 1
    prod = _servers(stack_run("prod"))
    classes = {
        r.inputs["spec"]["template"]["spec"]["nodeSelector"][GPU_CLASS_LABEL] for r in prod.values()
    }
    assert len(prod) >= 2 and len(classes) >= 2


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deployment_spec_follows_config_and_fit(stack_run: StackRun, stack: str) -> None:
    config = stack_config(stack)
    for name, server in _servers(stack_run(stack)).items():
        model_name = name.removeprefix("vllm-")
        model = config.inference.models[model_name]
        fit = estimate(model, config.cluster.gpu_classes[model.gpu_class or ""])
        spec = server.inputs["spec"]
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"].startswith("docker.io/vllm/vllm-openai:v")
        assert container["args"][0] == model.hf_repo
        assert _arg(container, "served-model-name") == model_name
        assert _arg(container, "revision") == model.revision
        assert int(_arg(container, "max-model-len")) == fit.max_model_len
        assert float(_arg(container, "gpu-memory-utilization")) == fit.gpu_memory_utilization
        assert int(_arg(container, "tensor-parallel-size")) == model.gpu_count
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(model.gpu_count)
        assert pod["runtimeClassName"] == "nvidia"
        assert pod["nodeSelector"] == {GPU_CLASS_LABEL: model.gpu_class}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
        assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == f"{name}-cache"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/health"
        plan = server_plan(config, model_name)
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= plan.startup_seconds
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        strategy = spec["strategy"]
        if strategy["type"] == "RollingUpdate":
            assert strategy["rollingUpdate"]["maxUnavailable"] == 0
        env = {e["name"]: e for e in container["env"]}
        assert ("HF_TOKEN" in env) == model.gated
        validate_core(server)


def test_cold_start_timeouts_grow_with_the_weights(stack_run: StackRun) -> None:
    config = stack_config("prod")
    plans = {n: server_plan(config, n) for n in cluster_models(config)}
    servers = _servers(stack_run("prod"))
    for name, plan in plans.items():
        timeouts = servers[f"vllm-{name}"].custom_timeouts
        assert timeouts["create"] == f"{plan.startup_seconds + 300}s"
        # Far beyond the provider's 10-minute default for anything over a few GB.
        assert plan.startup_seconds > 300
    small, large = sorted(plans.values(), key=lambda p: p.fit.weights_bytes)[:: len(plans) - 1]
    assert startup_seconds(small.fit) < startup_seconds(large.fit)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_services_pvcs_and_pdbs(stack_run: StackRun, stack: str) -> None:
    run = stack_run(stack)
    config = stack_config(stack)
    services = {
        r.inputs["metadata"]["name"]: r
        for r in run.of_type("kubernetes:core/v1:Service")
        if r.inputs["metadata"]["namespace"] == "inference"
    }
    claims = {
        r.inputs["metadata"]["name"]: r
        for r in run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    }
    for name in cluster_models(config):
        service = services[f"vllm-{name}"]
        assert service.inputs["spec"]["ports"][0]["port"] == 8000
        claim = claims[f"vllm-{name}-cache"]
        plan = server_plan(config, name)
        assert claim.inputs["spec"]["resources"]["requests"]["storage"] == f"{plan.cache_gib}Gi"
        assert plan.cache_gib * 2**30 > plan.fit.weights_bytes
        assert claim.protect == config.is_prod
        validate_core(service)
        validate_core(claim)
    pdbs = [
        r
        for r in run.of_type("kubernetes:policy/v1:PodDisruptionBudget")
        if r.inputs["metadata"]["namespace"] == "inference"
    ]
    assert len(pdbs) == sum(
        1 for n in cluster_models(config) if config.inference.models[n].replicas > 1
    )


def test_maintenance_scales_the_class_to_zero_and_back() -> None:
    values = stack_values("prod")
    values["cluster"]["gpu_classes"]["rtx-4090"]["maintenance"] = True
    servers = _servers(run_stack(values, "prod"))
    assert servers["vllm-qwen3-8b"].inputs["spec"]["replicas"] == 0
    assert servers["vllm-qwen3-14b"].inputs["spec"]["replicas"] == 1
    values["cluster"]["gpu_classes"]["rtx-4090"]["maintenance"] = False
    restored = _servers(run_stack(values, "prod"))
    assert restored["vllm-qwen3-8b"].inputs["spec"]["replicas"] == 1


def test_a_second_replica_surges_onto_a_spare_gpu_only() -> None:
    values = stack_values("prod")
    config = stack_config("prod")
    assert server_plan(config, "qwen3-8b").rolling is False  # the only 4090 is in use
    values["cluster"]["nodes"]["gpu-4090"]["gpu"]["count"] = 2
    from components.config import parse_platform_config

    assert server_plan(parse_platform_config(values), "qwen3-8b").rolling is True


def test_the_arguments_parse_with_vllms_own_parser() -> None:
    try:
        from vllm.engine.arg_utils import AsyncEngineArgs  # type: ignore[import-not-found]
        from vllm.utils import FlexibleArgumentParser  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("vLLM is not installed here (it needs a GPU build); not a test dependency")
    config = stack_config("prod")
    for name in cluster_models(config):
        model = config.inference.models[name]
        fit = estimate(model, config.cluster.gpu_classes[model.gpu_class or ""])
        parser = AsyncEngineArgs.add_cli_args(FlexibleArgumentParser())
        parser.add_argument("model_tag", nargs="?")
        parser.add_argument("--host")
        parser.add_argument("--port", type=int)
        parser.add_argument("--served-model-name")
        parsed: argparse.Namespace = parser.parse_args(vllm_args(name, model, fit))
        assert parsed.max_model_len == fit.max_model_len

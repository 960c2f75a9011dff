"""GPU support and LAN GPU hosts under the recording mocks, and the cluster config helpers."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.cluster.gpu import GpuSupport, GpuSupportArgs, device_plugin_values
from components.cluster.lan_hosts import LanGpuHosts, LanGpuHostsArgs
from components.cluster.scripts import rewrite_kubeconfig
from components.config import ClusterConfig, parse_platform_config
from components.config.cluster import GPU_CLASS_LABEL, GPU_TAINT_KEY, kubelet_may_set
from components.versions import NVIDIA_DEVICE_PLUGIN
from tests.support import stack_values
from tests.unit.manifest_checks import validate_core
from tools.mock_engine import ProgramRun, config_for_engine, run_program

RELEASE = "kubernetes:helm.sh/v3:Release"
RUNTIME_CLASS = "kubernetes:node.k8s.io/v1:RuntimeClass"


def run_cluster_addons(values: dict[str, Any]) -> ProgramRun:
    config = parse_platform_config(values)

    def program() -> dict[str, Any]:
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        gpu = GpuSupport("gpu", GpuSupportArgs(config=config.cluster, provider=provider))
        LanGpuHosts("lan", LanGpuHostsArgs(config=config, provider=provider))
        return {"gpu": gpu}

    return run_program(
        stack=config.environment, config=config_for_engine(values), secret_keys=[], program=program
    )


def without_gpu_nodes(values: dict[str, Any]) -> dict[str, Any]:
    values["cluster"]["nodes"]["rack-1"].pop("gpu")
    values["inference"]["models"] = {}
    values["llm_gateway"].pop("cloud_models", None)
    values["clients"]["dev-laptop"].pop("models", None)
    return values


def test_runtime_class_and_device_plugin_exist_with_gpu_nodes() -> None:
    run = run_cluster_addons(stack_values("prod"))
    (runtime_class,) = run.of_type(RUNTIME_CLASS)
    assert runtime_class.inputs["metadata"]["name"] == "nvidia"
    assert runtime_class.inputs["handler"] == "nvidia"
    assert runtime_class.inputs["scheduling"]["tolerations"] == [
        {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
    ]
    validate_core(runtime_class)
    (release,) = run.of_type(RELEASE)
    assert release.inputs["chart"] == NVIDIA_DEVICE_PLUGIN.name
    assert release.inputs["version"] == NVIDIA_DEVICE_PLUGIN.version
    assert release.inputs["repositoryOpts"]["repo"] == NVIDIA_DEVICE_PLUGIN.repo
    assert release.inputs["namespace"] == "kube-system"
    assert runtime_class.urn in release.depends_on
    k8s_provider = next(r for r in run.resources if r.type == "pulumi:providers:kubernetes")
    assert {runtime_class.provider, release.provider} == {k8s_provider.urn}
    gpu: GpuSupport = run.program_globals["gpu"]
    assert len(gpu.ready) == 2


def test_nothing_gpu_without_gpu_nodes() -> None:
    run = run_cluster_addons(without_gpu_nodes(stack_values("dev")))
    assert run.of_type(RUNTIME_CLASS) == []
    assert run.of_type(RELEASE) == []
    assert run.program_globals["gpu"].ready == []


def test_device_plugin_runs_on_gpu_nodes_and_tolerates_their_taint() -> None:
    values = device_plugin_values(parse_platform_config(stack_values("prod")).cluster)
    assert values["runtimeClassName"] == "nvidia"
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": GPU_CLASS_LABEL, "operator": "Exists"}]}
    ]
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in values[
        "tolerations"
    ]


def test_time_slicing_follows_the_gpu_class() -> None:
    raw = stack_values("prod")
    raw["cluster"]["gpu_classes"]["rtx-4090"]["sharing"] = "time-slicing"
    raw["cluster"]["gpu_classes"]["rtx-4090"]["time_slicing_replicas"] = 4
    # The cluster model alone: whether models still fit is the inference area's rule.
    values = device_plugin_values(ClusterConfig.model_validate(raw["cluster"]))
    configs = {name: yaml.safe_load(text) for name, text in values["config"]["map"].items()}
    # Classes on nodes (the CI node's rtx-3060 too), not the LAN host's.
    assert set(configs) == {"rtx-4090", "rtx-3090", "rtx-3060"}
    (resource,) = configs["rtx-4090"]["sharing"]["timeSlicing"]["resources"]
    assert resource == {"name": "nvidia.com/gpu", "replicas": 4}
    assert "sharing" not in configs["rtx-3090"]
    # Unlabelled nodes are never oversold: the default is a class without sharing.
    assert values["config"]["default"] in ("rtx-3060", "rtx-3090")
    assert "sharing" not in configs[values["config"]["default"]]


def test_gpu_labels_match_what_model_servers_select() -> None:
    from components.inference import model_server

    assert model_server.GPU_CLASS_LABEL == GPU_CLASS_LABEL
    assert model_server.GPU_TAINT_KEY == GPU_TAINT_KEY


def test_lan_host_is_a_service_with_a_manual_endpoint_slice() -> None:
    run = run_cluster_addons(stack_values("prod"))
    (service,) = run.of_type("kubernetes:core/v1:Service")
    (slice_,) = run.of_type("kubernetes:discovery.k8s.io/v1:EndpointSlice")
    assert service.inputs["metadata"]["name"] == "lan-workstation"
    assert service.inputs["metadata"]["namespace"] == "inference"
    assert "selector" not in service.inputs["spec"]
    assert slice_.inputs["metadata"]["namespace"] == "inference"
    assert slice_.inputs["metadata"]["labels"]["kubernetes.io/service-name"] == "lan-workstation"
    assert slice_.inputs["endpoints"][0]["addresses"] == ["192.168.10.50"]
    assert slice_.inputs["endpoints"][0]["conditions"] == {"ready": True}
    service_ports = {p["name"]: p["port"] for p in service.inputs["spec"]["ports"]}
    slice_ports = {p["name"]: p["port"] for p in slice_.inputs["ports"]}
    assert service_ports == slice_ports == {"vllm-8000": 8000, "vllm-8001": 8001}
    for resource in (service, slice_):
        validate_core(resource)


def test_lan_host_in_maintenance_is_not_ready() -> None:
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["maintenance"] = True
    run = run_cluster_addons(values)
    (slice_,) = run.of_type("kubernetes:discovery.k8s.io/v1:EndpointSlice")
    assert slice_.inputs["endpoints"][0]["conditions"] == {"ready": False}


def test_no_lan_hosts_no_services() -> None:
    run = run_cluster_addons(stack_values("dev"))
    assert run.of_type("kubernetes:core/v1:Service") == []
    assert run.of_type("kubernetes:discovery.k8s.io/v1:EndpointSlice") == []


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("node-role/ai", True),
        ("llm-platform.io/gpu-class", True),
        ("node.kubernetes.io/instance-type", True),
        ("topology.kubernetes.io/zone", True),
        ("example.node.kubernetes.io/x", True),
        ("node-role.kubernetes.io/worker", False),
        ("kubernetes.io/role", False),
        ("foo.k8s.io/bar", False),
    ],
)
def test_kubelet_label_rule(key: str, allowed: bool) -> None:
    assert kubelet_may_set(key) is allowed


def test_kubeconfig_points_at_the_api_endpoint() -> None:
    from ipaddress import IPv4Address

    text = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n"
    rewritten = rewrite_kubeconfig(text, IPv4Address("192.168.10.11"))
    assert yaml.safe_load(rewritten)["clusters"][0]["cluster"]["server"] == (
        "https://192.168.10.11:6443"
    )
    with pytest.raises(ValueError, match="no loopback server"):
        rewrite_kubeconfig("clusters: []\n", IPv4Address("192.168.10.11"))

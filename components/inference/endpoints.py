"""Where each local model is reached inside the cluster: names shared by every area.

The inference area creates the Services these functions name; the LLM gateway, the
mesh policies and the dashboards only read them. Pure functions of config.
"""

from __future__ import annotations

from components.config import LanGpuHost, LocalModel, PlatformConfig

INFERENCE_NAMESPACE = "inference"
VLLM_PORT = 8000
MODEL_SERVER_COMPONENT = "model-server"
"""`app.kubernetes.io/component` of every vLLM pod and LAN host Service."""


def model_service_name(model_name: str) -> str:
    """Service of an in-cluster model server: `vllm-<model>`."""
    return f"vllm-{model_name}"


def lan_host_service_name(host_name: str) -> str:
    """Service (with a manual EndpointSlice) standing for a LAN GPU host: `lan-<host>`."""
    return f"lan-{host_name}"


def _cluster_dns(service: str) -> str:
    return f"{service}.{INFERENCE_NAMESPACE}.svc.cluster.local"


def lan_host_api_base(host_name: str, host: LanGpuHost) -> str:
    """OpenAI-compatible base URL of a LAN GPU host, by its in-cluster name."""
    return f"http://{_cluster_dns(lan_host_service_name(host_name))}:{host.port}/v1"


def model_api_base(model_name: str, model: LocalModel, config: PlatformConfig) -> str:
    """OpenAI-compatible base URL (ending in `/v1`) the gateway uses for a local model."""
    if model.placement == "lan":
        assert model.lan_host is not None  # enforced by LocalModel validation
        return lan_host_api_base(model.lan_host, config.cluster.lan_gpu_hosts[model.lan_host])
    return f"http://{_cluster_dns(model_service_name(model_name))}:{VLLM_PORT}/v1"


def model_api_bases(config: PlatformConfig) -> dict[str, str]:
    """Every local model's base URL, by served model name."""
    return {
        name: model_api_base(name, model, config)
        for name, model in sorted(config.inference.models.items())
    }

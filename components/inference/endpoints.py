"""Where each local model is reached inside the cluster: names shared by every area.

The inference area creates the Services these functions name; the LLM gateway, the
mesh policies and the dashboards only read them. Pure functions of config.
"""

from __future__ import annotations

from components.config import LocalModel, PlatformConfig
from components.config.names import kubernetes_name

INFERENCE_NAMESPACE = "inference"
VLLM_PORT = 8000
MODEL_SERVER_COMPONENT = "model-server"
"""`app.kubernetes.io/component` of every vLLM pod and LAN host Service."""


def model_service_name(model_name: str) -> str:
    """Service of an in-cluster model server: `vllm-<Kubernetes name of the model>`."""
    return f"vllm-{kubernetes_name(model_name)}"


def lan_host_service_name(host_name: str) -> str:
    """Service (with a manual EndpointSlice) standing for a LAN GPU host: `lan-<host>`."""
    return f"lan-{host_name}"


def _cluster_dns(service: str) -> str:
    return f"{service}.{INFERENCE_NAMESPACE}.svc.cluster.local"


def lan_port_name(server: str, port: int) -> str:
    """Name of a LAN host service's port on its Service (`vllm-8001`, `ollama-11434`)."""
    return f"{server}-{port}"


def lan_host_api_base(host_name: str, port: int) -> str:
    """OpenAI-compatible base URL of a service of a LAN GPU host, by its in-cluster name."""
    return f"http://{_cluster_dns(lan_host_service_name(host_name))}:{port}/v1"


def model_api_base(model_name: str, model: LocalModel, config: PlatformConfig) -> str:
    """OpenAI-compatible base URL (ending in `/v1`) the gateway uses for a local model."""
    if model.placement == "lan":
        port = config.lan_port(model_name)
        assert model.lan_host is not None and port is not None  # enforced by the config
        return lan_host_api_base(model.lan_host, port)
    return f"http://{_cluster_dns(model_service_name(model_name))}:{VLLM_PORT}/v1"


def model_api_bases(config: PlatformConfig) -> dict[str, str]:
    """Every local model's base URL, by served model name."""
    return {
        name: model_api_base(name, model, config)
        for name, model in sorted(config.inference.models.items())
    }

"""The Docker Compose file of a LAN GPU host, from the same fit the gateway advertises.

Pure functions of config: `compose_document` is the file as a dict, `compose_yaml` as
written to `files/lan/<host>/compose.yaml` (and, on a `managed` host, installed at
`<install_dir>/compose.yaml`). Per service of the host:

* vLLM (one model): the pinned `vllm/vllm-openai` image (or the model's pinned `image`),
  `vllm serve` with the arguments of an in-cluster server (`vllm_args`: the served name,
  the fitted `--max-model-len` and `--gpu-memory-utilization`, all of the host's GPUs as
  tensor-parallel size, then the model's `extra_args`), published on the host's address
  at the service's port (its `/metrics` on the same port), the weight cache at `/models`;
* Ollama (several models): the pinned `ollama/ollama` image with one context length
  (`OLLAMA_CONTEXT_LENGTH`, the shortest fit of its models), one concurrency and every
  model kept loaded, plus a one-shot `<service>-pull-<model>` per model that pulls it
  once the server is healthy.

Every server reserves all of the host's GPUs through the NVIDIA driver (the NVIDIA
container toolkit must be installed), restarts unless stopped, and has a health check
whose start period is the model's cold start. A gated model reads `HF_TOKEN` from the
`.env` next to the file: Compose refuses to start without it.
"""

from __future__ import annotations

from typing import Any

import yaml

from components import versions
from components.config import LanGpuHost, LocalModel, PlatformConfig
from components.config.cluster import LanService
from components.config.names import kubernetes_name
from components.inference.deadlines import served_context
from components.inference.endpoints import VLLM_PORT
from components.inference.model_server import server_image, startup_seconds
from components.inference.vllm_args import MODEL_CACHE_PATH, vllm_args

PROJECT = "llm-platform"
OLLAMA_PORT = 11434
OLLAMA_DATA = "/root/.ollama"
HEALTH_INTERVAL = "30s"
GATED_TOKEN_REFERENCE = (
    "${HF_TOKEN:?set HF_TOKEN in the .env next to this file (the model is gated)}"  # noqa: S105
)


def _ports(host: LanGpuHost, service: LanService, target: int) -> list[dict[str, Any]]:
    # Published on the host's LAN address only, not on every interface of the workstation.
    return [
        {
            "target": target,
            "published": str(service.port),
            "host_ip": str(host.address),
            "protocol": "tcp",
        }
    ]


def _gpus(host: LanGpuHost) -> dict[str, Any]:
    return {
        "resources": {
            "reservations": {
                "devices": [{"driver": "nvidia", "count": host.gpu_count, "capabilities": ["gpu"]}]
            }
        }
    }


def vllm_service_name(model_name: str) -> str:
    """Compose service of a model on a vLLM service: `vllm-<Kubernetes name>`."""
    return f"vllm-{kubernetes_name(model_name)}"


def ollama_service_name(port: int) -> str:
    """Compose service of an Ollama server: `ollama-<port>`."""
    return f"ollama-{port}"


def _vllm_service(
    config: PlatformConfig, host_name: str, service: LanService, name: str
) -> dict[str, Any]:
    host = config.cluster.lan_gpu_hosts[host_name]
    model: LocalModel = config.inference.models[name].model_copy(
        update={"gpu_count": host.gpu_count}
    )
    fit = config.model_fit(name)
    assert fit is not None  # a LAN model of a valid config has a fit
    environment = {"HF_HOME": MODEL_CACHE_PATH, "VLLM_NO_USAGE_STATS": "1"}
    if model.gated:
        # Compose interpolation: refuses to start unless the `.env` beside the file sets it.
        environment["HF_TOKEN"] = GATED_TOKEN_REFERENCE
    cache = (
        f"{host.cache_dir}:{MODEL_CACHE_PATH}"
        if host.cache_dir
        else f"model-cache:{MODEL_CACHE_PATH}"
    )
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{VLLM_PORT}/health', timeout=4)"
    return {
        "image": server_image(model),
        "command": vllm_args(name, model, fit),
        "environment": environment,
        "ports": _ports(host, service, VLLM_PORT),
        "volumes": [cache],
        # Tensor-parallel workers exchange tensors through shared memory.
        "shm_size": f"{2 * host.gpu_count}gb",
        "deploy": _gpus(host),
        "healthcheck": {
            "test": ["CMD", "python3", "-c", probe],
            "interval": HEALTH_INTERVAL,
            "timeout": "5s",
            "retries": 3,
            "start_period": f"{startup_seconds(fit)}s",
        },
        "restart": "unless-stopped",
        "labels": {
            "io.llm-platform.model": name,
            "io.llm-platform.metrics": f"http://{host.address}:{service.port}/metrics",
        },
    }


def _ollama_services(
    config: PlatformConfig, host_name: str, service: LanService, names: list[str]
) -> dict[str, dict[str, Any]]:
    host = config.cluster.lan_gpu_hosts[host_name]
    server = ollama_service_name(service.port)
    image = (
        versions.parse_image(service.image).ref
        if service.image is not None
        else versions.OLLAMA.ref
    )
    data = (
        f"{host.cache_dir}/ollama:{OLLAMA_DATA}" if host.cache_dir else f"ollama-data:{OLLAMA_DATA}"
    )
    models = [config.inference.models[n] for n in names]
    out: dict[str, dict[str, Any]] = {
        server: {
            "image": image,
            "command": ["serve"],
            "environment": {
                "OLLAMA_HOST": f"0.0.0.0:{OLLAMA_PORT}",
                "OLLAMA_CONTEXT_LENGTH": str(served_context(config, names[0])),
                "OLLAMA_NUM_PARALLEL": str(models[0].max_concurrent_sequences),
                "OLLAMA_MAX_LOADED_MODELS": str(len(names)),
                # Loaded once, kept: unloading would free memory the fit counted on.
                "OLLAMA_KEEP_ALIVE": "-1",
            },
            "ports": _ports(host, service, OLLAMA_PORT),
            "volumes": [data],
            "deploy": _gpus(host),
            "healthcheck": {
                "test": ["CMD", "ollama", "list"],
                "interval": HEALTH_INTERVAL,
                "timeout": "5s",
                "retries": 3,
                "start_period": "60s",
            },
            "restart": "unless-stopped",
            "labels": {"io.llm-platform.models": ",".join(names)},
        }
    }
    for name, model in zip(names, models, strict=True):
        out[f"{server}-pull-{kubernetes_name(name)}"] = {
            "image": image,
            "command": ["pull", model.backend_model or ""],
            "environment": {"OLLAMA_HOST": f"http://{server}:{OLLAMA_PORT}"},
            "depends_on": {server: {"condition": "service_healthy"}},
            "restart": "no",
            "labels": {"io.llm-platform.model": name},
        }
    return out


def compose_document(config: PlatformConfig, host_name: str) -> dict[str, Any]:
    """The Compose file of one LAN GPU host (pure)."""
    host = config.cluster.lan_gpu_hosts[host_name]
    services: dict[str, dict[str, Any]] = {}
    volumes: dict[str, dict[str, Any]] = {}
    for service in host.services:
        names = [n for n in config.lan_models(host_name) if config.lan_port(n) == service.port]
        if service.server == "vllm":
            (name,) = names  # one model per vLLM service, by the config rules
            services[vllm_service_name(name)] = _vllm_service(config, host_name, service, name)
            if host.cache_dir is None:
                volumes["model-cache"] = {}
        else:
            services.update(_ollama_services(config, host_name, service, names))
            if host.cache_dir is None:
                volumes["ollama-data"] = {}
    document: dict[str, Any] = {"name": PROJECT, "services": services}
    if volumes:
        document["volumes"] = volumes
    return document


def compose_yaml(config: PlatformConfig, host_name: str) -> str:
    """The Compose file of one LAN GPU host as written on the host."""
    header = (
        f"# Docker Compose file of LAN GPU host {host_name}, generated by llm-platform from\n"
        "# the stack config and the fit the gateway uses; do not edit by hand.\n"
    )
    body: str = yaml.safe_dump(
        compose_document(config, host_name), sort_keys=False, default_flow_style=False, width=100
    )
    return header + body

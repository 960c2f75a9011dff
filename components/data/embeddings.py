"""The embeddings server's Deployment spec (pure): Hugging Face text-embeddings-inference.

Why TEI and not vLLM's pooling runner: the stacks put embeddings on CPU (prod) where TEI
ships a small CPU image built for exactly this job, while vLLM's CPU build is another,
much heavier image; TEI batches embedding requests by token budget, serves
`/v1/embeddings` (OpenAI-compatible, what LiteLLM calls) and supports bge-m3. On a GPU
it runs the `cuda-` image, pinned alike; vLLM pooling would also work there but would
share a GPU's memory accounting with the generation servers.

The pod fits the `restricted` Pod Security level: non-root, no privilege escalation, all
capabilities dropped, read-only root file system with the weight cache on a PVC at
`/data` (the image's `HUGGINGFACE_HUB_CACHE`) and `/tmp` for TEI's internal socket.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components import versions
from components.cluster.namespaces import EMBEDDINGS_PORT
from components.config import DataLayerConfig
from components.config.cluster import GPU_CLASS_LABEL, GPU_TAINT_KEY
from components.pod_security import NON_ROOT_UID, restricted_pod_security

NAME = "embeddings"
PORT = EMBEDDINGS_PORT
METRICS_PORT = 9000
CACHE_PATH = "/data"
NVIDIA_RUNTIME_CLASS = "nvidia"
"""The RuntimeClass of the cluster area's GPU support."""
RUN_AS = NON_ROOT_UID
"""The image needs no user of its own: its files are world-readable."""
NAMESPACE = "data"


def api_base() -> str:
    """The embeddings server's OpenAI-compatible base URL inside the cluster."""
    return f"http://{NAME}.{NAMESPACE}.svc.cluster.local:{PORT}/v1"


def tei_image(data: DataLayerConfig) -> str:
    """The pinned TEI image for the configured device."""
    image = versions.TEI_CUDA if data.embeddings_device == "gpu" else versions.TEI_CPU
    return image.ref


def tei_args(data: DataLayerConfig) -> list[str]:
    """Command-line of text-embeddings-router (flags of TEI 1.9.3 router/src/main.rs)."""
    return [
        "--model-id",
        data.embeddings_hf_repo,
        "--revision",
        data.embeddings_revision,
        "--served-model-name",
        data.embeddings_model,
        "--hostname",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--prometheus-port",
        str(METRICS_PORT),
        "--huggingface-hub-cache",
        CACHE_PATH,
        "--json-output",
    ]


def cache_claim_name() -> str:
    """Name of the PersistentVolumeClaim holding the weight cache."""
    return f"{NAME}-cache"


def _probe(*, failures: int) -> k8s.core.v1.ProbeArgsDict:
    return {
        "http_get": {"path": "/health", "port": "http"},
        "period_seconds": 10,
        "failure_threshold": failures,
    }


def pod_spec(data: DataLayerConfig) -> k8s.core.v1.PodSpecArgsDict:
    """Pod spec of the embeddings server: restricted security, weight cache, GPU if asked."""
    gpu = data.embeddings_device == "gpu"
    requests = {"cpu": "1", "memory": "3Gi"}
    limits = {"cpu": "4", "memory": "6Gi"}
    if gpu:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = "1"
    spec: k8s.core.v1.PodSpecArgsDict = {
        "automount_service_account_token": False,
        "enable_service_links": False,
        "security_context": restricted_pod_security(RUN_AS),
        "containers": [
            {
                "name": "tei",
                "image": tei_image(data),
                "args": tei_args(data),
                "ports": [
                    {"name": "http", "container_port": PORT, "protocol": "TCP"},
                    {"name": "metrics", "container_port": METRICS_PORT, "protocol": "TCP"},
                ],
                "resources": {"requests": requests, "limits": limits},
                # The first start downloads the weights (about 2.3 GB for bge-m3).
                "startup_probe": _probe(failures=90),
                "readiness_probe": _probe(failures=3),
                "liveness_probe": _probe(failures=6),
                "security_context": {
                    "allow_privilege_escalation": False,
                    "read_only_root_filesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volume_mounts": [
                    {"name": "cache", "mount_path": CACHE_PATH},
                    {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108 (an emptyDir)
                ],
            }
        ],
        "volumes": [
            {"name": "cache", "persistent_volume_claim": {"claim_name": cache_claim_name()}},
            {"name": "tmp", "empty_dir": {"size_limit": "256Mi"}},
        ],
    }
    if gpu:
        assert data.embeddings_gpu_class is not None  # enforced by DataLayerConfig
        spec["runtime_class_name"] = NVIDIA_RUNTIME_CLASS
        spec["node_selector"] = {GPU_CLASS_LABEL: data.embeddings_gpu_class}
        spec["tolerations"] = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    return spec

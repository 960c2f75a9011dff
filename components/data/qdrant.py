"""Qdrant from its pinned chart: values and mesh identities (pure).

Why Qdrant (not Weaviate): one Rust binary with a small memory footprint, an official
Helm chart, an API key built in, and a snapshot API that a CronJob can drive with curl;
Weaviate needs more memory and module configuration for the same job.

The API key: the chart can read it from a Secret (`apiKey.valueFrom`), but that goes
through Helm's `lookup`, which returns nothing when a chart is rendered without the
cluster (preview, `helm template`); the chart then writes no key at all and Qdrant
would start open. Passing the key as a value would make the whole of the release's
values a secret in previews. So Qdrant reads it from our Secret through the environment
(`QDRANT__SERVICE__API_KEY`, Qdrant's environment form of `service.api_key`): without
the Secret the pod does not start, so it fails closed, and the values stay reviewable.
"""

from __future__ import annotations

from typing import Any

from components.cluster.namespaces import QDRANT_GRPC_PORT, QDRANT_HTTP_PORT
from components.config import DataLayerConfig

RELEASE = "qdrant"
"""Release name; the chart's fullname equals it (it contains the chart name)."""
STATEFUL_SET = RELEASE
"""The chart's StatefulSet: its fullname, the release name when it contains the chart's."""
HTTP_PORT = QDRANT_HTTP_PORT
GRPC_PORT = QDRANT_GRPC_PORT
P2P_PORT = 6335
SELECTOR = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": RELEASE}
"""The chart's selector labels (`qdrant.selectorLabels`)."""
HEADLESS_SERVICE = f"{RELEASE}-headless"
LITELLM_IDENTITY = "litellm.llm-gateway.serviceaccount.identity.linkerd.cluster.local"
DATA_NAMESPACE_IDENTITIES = "*.data.serviceaccount.identity.linkerd.cluster.local"


API_KEY_ENV = "QDRANT__SERVICE__API_KEY"


def qdrant_values(
    data: DataLayerConfig, *, prod: bool, api_key_secret: str, api_key_key: str
) -> dict[str, Any]:
    """Values of the qdrant chart; the API key comes from the Secret `api_key_secret`.

    The unprivileged image (with which the chart adds no volume-ownership init step)
    keeps the pods within the `restricted` Pod Security level of the data namespace.
    """
    replicas = data.vector_db_replicas
    values: dict[str, Any] = {
        "replicaCount": replicas,
        "image": {"useUnprivilegedImage": True},
        "persistence": {"size": f"{data.vector_db_storage_gib}Gi"},
        "apiKey": False,
        "env": [
            {
                "name": API_KEY_ENV,
                "valueFrom": {"secretKeyRef": {"name": api_key_secret, "key": api_key_key}},
            }
        ],
        "podSecurityContext": {
            "runAsNonRoot": True,
            "fsGroup": 3000,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 2000,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": (
            {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
            if prod
            else {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
        ),
    }
    if replicas > 1:
        values["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
    return values


def mesh_client_identities() -> list[str]:
    """Linkerd identities allowed to call the data layer: LiteLLM and the data namespace."""
    return [LITELLM_IDENTITY, DATA_NAMESPACE_IDENTITIES]

"""Qdrant from its pinned chart: values, network and mesh policy specs (pure).

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

import pulumi_kubernetes as k8s

from components.config import DataLayerConfig

RELEASE = "qdrant"
"""Release name; the chart's fullname equals it (it contains the chart name)."""
HTTP_PORT = 6333
GRPC_PORT = 6334
P2P_PORT = 6335
LINKERD_INBOUND = 4143
SELECTOR = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": RELEASE}
"""The chart's selector labels (`qdrant.selectorLabels`)."""
HEADLESS_SERVICE = f"{RELEASE}-headless"
CLIENT_NAMESPACES = ("llm-gateway", "data")
LITELLM_IDENTITY = "litellm.llm-gateway.serviceaccount.identity.linkerd.cluster.local"
DATA_NAMESPACE_IDENTITIES = "*.data.serviceaccount.identity.linkerd.cluster.local"


API_KEY_ENV = "QDRANT__SERVICE__API_KEY"


def qdrant_values(
    data: DataLayerConfig, *, prod: bool, api_key_secret: str, api_key_key: str
) -> dict[str, Any]:
    """Values of the qdrant chart; the API key comes from the Secret `api_key_secret`.

    The unprivileged image and no volume-ownership init step keep the pods within the
    `restricted` Pod Security level of the data namespace.
    """
    replicas = data.vector_db_replicas
    values: dict[str, Any] = {
        "replicaCount": replicas,
        "image": {"useUnprivilegedImage": True},
        "updateVolumeFsOwnership": False,
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


def network_policy_spec(*, meshed: bool) -> k8s.networking.v1.NetworkPolicySpecArgsDict:
    """Ingress to Qdrant's API ports from the LLM gateway's and the data namespaces only.

    Peers reach each other on the p2p port within the namespace (the base allows
    same-namespace traffic).
    """
    ports = [HTTP_PORT, GRPC_PORT] + ([LINKERD_INBOUND] if meshed else [])
    return {
        "pod_selector": {"match_labels": dict(SELECTOR)},
        "policy_types": ["Ingress"],
        "ingress": [
            {
                "from_": [
                    {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": ns}}}
                    for ns in CLIENT_NAMESPACES
                ],
                "ports": [{"protocol": "TCP", "port": port} for port in ports],
            }
        ],
    }


def mesh_client_identities() -> list[str]:
    """Linkerd identities allowed to call the data layer: LiteLLM and the data namespace."""
    return [LITELLM_IDENTITY, DATA_NAMESPACE_IDENTITIES]

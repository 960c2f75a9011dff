"""ResourceRecommendations: a VerticalPodAutoscaler in recommendation mode per platform workload.

For each workload an area hands over (the gateway, its Redis, the model servers, the
embeddings server, Qdrant), an `autoscaling.k8s.io/v1` VerticalPodAutoscaler in the
workload's namespace, named after it, with `updateMode: "Off"`: the recommender writes
what it would request for each container into the object's status and nothing is
changed. The Linkerd proxy sidecar is left out (`mode: "Off"`): its resources are the
mesh's (`proxy.resources`), not the workload's. Grafana and Prometheus get theirs from
their own chart (`verticalPodAutoscaler` values, observability area). Everything waits
for the VPA release (`vpa_ready`: its CRDs). Nothing is created when `vpa.enabled` is off.

Expects the cluster's explicit `k8s.Provider`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import PlatformConfig
from components.labels import standard_labels
from components.workloads import Workload

VPA_API = "autoscaling.k8s.io/v1"
MESH_PROXY_CONTAINER = "linkerd-proxy"
COMPONENT = "autoscaling"


def recommendation_spec(workload: Workload) -> dict[str, Any]:
    """`spec` of a VerticalPodAutoscaler that only recommends, for every container but the
    mesh proxy."""
    return {
        "targetRef": {
            "apiVersion": workload.api_version,
            "kind": workload.kind,
            "name": workload.name,
        },
        "updatePolicy": {"updateMode": "Off"},
        "resourcePolicy": {
            "containerPolicies": [
                {"containerName": MESH_PROXY_CONTAINER, "mode": "Off"},
                {"containerName": "*", "controlledResources": ["cpu", "memory"]},
            ]
        },
    }


@dataclass(frozen=True, kw_only=True)
class ResourceRecommendationsArgs:
    """Inputs of the recommendations."""

    config: PlatformConfig
    """The stack config: `vpa.enabled`."""
    provider: k8s.Provider
    """The cluster's explicit provider."""
    workloads: Sequence[Workload]
    """The areas' workloads (`Inference.workloads`, `LlmGateway.workloads`, ...)."""
    namespaces: Mapping[str, pulumi.Input[str]]
    """`ClusterBase.namespaces`: each object waits for its workload's namespace."""
    vpa_ready: Sequence[pulumi.Resource] = ()
    """`Autoscalers.vpa_ready`: the VPA CRDs."""


class ResourceRecommendations(pulumi.ComponentResource):
    """VerticalPodAutoscalers with `updateMode: "Off"` for the platform's workloads."""

    def __init__(
        self,
        name: str,
        args: ResourceRecommendationsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:autoscaling:ResourceRecommendations", name, None, opts)
        if args.config.vpa.enabled:
            after_crds = pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.vpa_ready)
            )
            for workload in sorted(args.workloads, key=lambda w: (w.namespace, w.name)):
                k8s.apiextensions.CustomResource(
                    f"{name}-{workload.namespace}-{workload.name}",
                    api_version=VPA_API,
                    kind="VerticalPodAutoscaler",
                    metadata={
                        "name": workload.name,
                        "namespace": args.namespaces.get(workload.namespace, workload.namespace),
                        "labels": standard_labels(name=workload.name, component=COMPONENT),
                    },
                    spec=recommendation_spec(workload),
                    opts=after_crds,
                )
        self.register_outputs({})

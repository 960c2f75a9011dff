"""LanGpuHosts: GPU workstations outside the cluster, reachable by a cluster DNS name.

Each LAN GPU host of the config (a workstation serving vLLM or Ollama's OpenAI API on the
LAN) becomes, in the `inference` namespace, a Service without a selector at
`lan-<host>`, with one port per service the host runs (named `<server>-<port>`), and a
manual EndpointSlice pointing at the host's address, so the LLM gateway reaches each
service as `lan-<host>.inference.svc.cluster.local:<port>` like any model server.
Kubernetes never health-checks a manual endpoint; the gateway's background health checks
and its cooldown take a dead host out of rotation (its cloud fallback serves meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.config import LanGpuHost, PlatformConfig
from components.inference.endpoints import (
    INFERENCE_NAMESPACE,
    MODEL_SERVER_COMPONENT,
    lan_host_service_name,
    lan_port_name,
)
from components.labels import standard_labels


def endpoint_slice(name: str, host: LanGpuHost, namespace: str) -> dict[str, object]:
    """The manual EndpointSlice of a LAN host's Service (pure)."""
    service = lan_host_service_name(name)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-1",
            "namespace": namespace,
            "labels": {
                **standard_labels(name=service, component=MODEL_SERVER_COMPONENT),
                # Ties the slice to its Service; without it kube-proxy ignores the slice.
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "llm-platform",
            },
        },
        "addressType": "IPv4",
        "ports": [
            {"name": lan_port_name(s.server, s.port), "port": s.port, "protocol": "TCP"}
            for s in host.services
        ],
        "endpoints": [
            {
                "addresses": [str(host.address)],
                "conditions": {"ready": not host.maintenance},
            }
        ],
    }


@dataclass(frozen=True, kw_only=True)
class LanGpuHostsArgs:
    """Inputs of the LAN host Services."""

    config: PlatformConfig
    provider: k8s.Provider
    namespace: pulumi.Input[str] = INFERENCE_NAMESPACE


class LanGpuHosts(pulumi.ComponentResource):
    """A selector-less Service and a manual EndpointSlice per LAN GPU host."""

    services: dict[str, str]

    def __init__(
        self, name: str, args: LanGpuHostsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:cluster:LanGpuHosts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.services = {}
        for host_name, host in sorted(args.config.cluster.lan_gpu_hosts.items()):
            service_name = lan_host_service_name(host_name)
            self.services[host_name] = service_name
            labels = standard_labels(name=service_name, component=MODEL_SERVER_COMPONENT)
            service = k8s.core.v1.Service(
                f"{name}-{host_name}",
                metadata={"name": service_name, "namespace": args.namespace, "labels": labels},
                spec={
                    "type": "ClusterIP",
                    "ports": [
                        {
                            "name": lan_port_name(s.server, s.port),
                            "port": s.port,
                            "target_port": s.port,
                        }
                        for s in host.services
                    ],
                },
                opts=child,
            )
            body: dict[str, Any] = endpoint_slice(host_name, host, INFERENCE_NAMESPACE)
            k8s.discovery.v1.EndpointSlice(
                f"{name}-{host_name}-endpoints",
                metadata=cast(
                    k8s.meta.v1.ObjectMetaArgsDict,
                    {**body["metadata"], "namespace": args.namespace},
                ),
                address_type="IPv4",
                ports=body["ports"],
                endpoints=body["endpoints"],
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[service])
                ),
            )
        self.register_outputs({"services": self.services})

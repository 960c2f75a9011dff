"""ClusterBase: the namespaces every area deploys into, fenced by quotas and network policy.

Creates, per platform namespace: the Namespace with Pod Security Standards labels (enforce
at the namespace's level, warn and audit at `restricted`), the trust-bundle label and
Linkerd's injection annotation where meshed; for workload namespaces a ResourceQuota and
a LimitRange from config; and a default-deny NetworkPolicy plus one allow policy per flow
the platform needs (`platform_flows`), DNS and same-namespace traffic.

Exposes `namespaces`: namespace name → `Output[str]` of the created namespace, which
areas use as their namespace so they depend on it. Expects an explicit `k8s.Provider`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    LimitRangeSpecArgsDict,
    ResourceQuotaSpecArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)

from components.config import NamespaceConfig, PlatformConfig
from components.labels import standard_labels

from .namespaces import WORLD, Flow, NamespaceSpec, platform_flows, platform_namespaces

RESTRICTED = "restricted"


@dataclass(frozen=True, kw_only=True)
class ClusterBaseArgs:
    """Inputs of the cluster base."""

    config: PlatformConfig
    """The stack config; namespaces, quotas and flows derive from it."""
    provider: k8s.Provider
    """The cluster's explicit provider."""


def namespace_metadata(spec: NamespaceSpec, config: PlatformConfig) -> ObjectMetaArgsDict:
    """Labels and annotations of a platform namespace."""
    version = f"v{config.cluster.kubernetes_version}"
    labels = {
        **standard_labels(name=spec.name, component=spec.area),
        "pod-security.kubernetes.io/enforce": spec.enforce.value,
        "pod-security.kubernetes.io/enforce-version": version,
        "pod-security.kubernetes.io/warn": RESTRICTED,
        "pod-security.kubernetes.io/warn-version": version,
        "pod-security.kubernetes.io/audit": RESTRICTED,
        "pod-security.kubernetes.io/audit-version": version,
        config.pki.trust_bundle_label: "enabled",
    }
    annotations = {"linkerd.io/inject": "enabled"} if spec.meshed else {}
    if spec.why_not_restricted:
        annotations["llm-platform.io/pod-security-reason"] = spec.why_not_restricted
    return {"name": spec.name, "labels": labels, "annotations": annotations}


def quota_spec(sizing: NamespaceConfig) -> ResourceQuotaSpecArgsDict:
    """ResourceQuota spec of a workload namespace."""
    q = sizing.quota
    hard = {
        "requests.cpu": q.requests_cpu,
        "requests.memory": q.requests_memory,
        "limits.cpu": q.limits_cpu,
        "limits.memory": q.limits_memory,
        "pods": str(q.pods),
        "persistentvolumeclaims": str(q.persistent_volume_claims),
        "requests.storage": q.requests_storage,
        "requests.nvidia.com/gpu": str(q.gpus),
    }
    return {"hard": hard}


def limit_range_spec(sizing: NamespaceConfig) -> LimitRangeSpecArgsDict:
    """LimitRange spec: defaults for containers that set no requests or limits."""
    d = sizing.container_defaults
    return {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": d.default_limit_cpu, "memory": d.default_limit_memory},
                "default_request": {
                    "cpu": d.default_request_cpu,
                    "memory": d.default_request_memory,
                },
                "max": {"memory": d.max_memory},
            }
        ]
    }


def _peer(other: str) -> NetworkPolicyPeerArgsDict:
    if other == WORLD:
        return {"ip_block": {"cidr": "0.0.0.0/0"}}
    if "/" in other:
        return {"ip_block": {"cidr": other}}
    return {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": other}}}


def _ports(ports: tuple[int, ...]) -> list[NetworkPolicyPortArgsDict]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policies(
    spec: NamespaceSpec, flows: tuple[Flow, ...]
) -> dict[str, NetworkPolicySpecArgsDict]:
    """NetworkPolicy specs of one namespace, by policy name (stable: from peer names)."""
    policies: dict[str, NetworkPolicySpecArgsDict] = {
        "default-deny": {"pod_selector": {}, "policy_types": ["Ingress", "Egress"]},
        "allow-dns": {
            "pod_selector": {},
            "policy_types": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespace_selector": {
                                "match_labels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [
                        {"protocol": "UDP", "port": 53},
                        {"protocol": "TCP", "port": 53},
                    ],
                }
            ],
        },
        "allow-same-namespace": {
            "pod_selector": {},
            "policy_types": ["Ingress", "Egress"],
            "ingress": [{"from_": [{"pod_selector": {}}]}],
            "egress": [{"to": [{"pod_selector": {}}]}],
        },
    }
    inbound: dict[str, list[Flow]] = defaultdict(list)
    outbound: dict[str, list[Flow]] = defaultdict(list)
    for flow in flows:
        if flow.target == spec.name:
            inbound[flow.source].append(flow)
        if flow.source == spec.name:
            outbound[flow.target].append(flow)
    for source, items in sorted(inbound.items()):
        rule: NetworkPolicyIngressRuleArgsDict = {"from_": [_peer(source)]}
        ports = tuple(sorted({p for f in items for p in f.ports}))
        if ports and all(f.ports for f in items):
            rule["ports"] = _ports(ports)
        policies[f"allow-from-{_slug(source)}"] = {
            "pod_selector": {},
            "policy_types": ["Ingress"],
            "ingress": [rule],
        }
    for target, items in sorted(outbound.items()):
        egress: NetworkPolicyEgressRuleArgsDict = {"to": [_peer(target)]}
        ports = tuple(sorted({p for f in items for p in f.ports}))
        if ports and all(f.ports for f in items):
            egress["ports"] = _ports(ports)
        policies[f"allow-to-{_slug(target)}"] = {
            "pod_selector": {},
            "policy_types": ["Egress"],
            "egress": [egress],
        }
    return policies


def _slug(peer: str) -> str:
    return peer.replace(".", "-").replace("/", "-")


class ClusterBase(pulumi.ComponentResource):
    """Namespaces with Pod Security labels, quotas, container defaults and network policy."""

    namespaces: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ClusterBaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:cluster:ClusterBase", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        flows = platform_flows(config)

        self.namespaces = {}
        for spec in platform_namespaces(config):
            namespace = k8s.core.v1.Namespace(
                f"{name}-ns-{spec.name}",
                metadata=namespace_metadata(spec, config),
                opts=child,
            )
            ns_name = namespace.metadata.apply(lambda m: str(m.name))
            self.namespaces[spec.name] = ns_name
            in_ns = pulumi.ResourceOptions(parent=namespace, provider=args.provider)

            if spec.quota_key is not None:
                sizing: NamespaceConfig = getattr(config.namespaces, spec.quota_key)
                k8s.core.v1.ResourceQuota(
                    f"{name}-quota-{spec.name}",
                    metadata={"name": "platform-quota", "namespace": ns_name},
                    spec=quota_spec(sizing),
                    opts=in_ns,
                )
                k8s.core.v1.LimitRange(
                    f"{name}-limits-{spec.name}",
                    metadata={"name": "container-defaults", "namespace": ns_name},
                    spec=limit_range_spec(sizing),
                    opts=in_ns,
                )
            for policy_name, policy in network_policies(spec, flows).items():
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-netpol-{spec.name}-{policy_name}",
                    metadata={"name": policy_name, "namespace": ns_name},
                    spec=policy,
                    opts=in_ns,
                )

        self.register_outputs({"namespaces": self.namespaces})

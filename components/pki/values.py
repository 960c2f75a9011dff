"""Pure builders of the internal PKI's Helm values and custom resource specs.

Everything here is a deterministic function of typed values (the environment, names,
durations), so tests check it without the engine and `InternalPki` only wires it.
The chart values follow cert-manager's best-practice guide for production
(docs/installation/best-practice.md: controller 2, webhook 3, cainjector 2 replicas,
PodDisruptionBudgets, topology spread, `system-cluster-critical`, resource requests)
and keep dev on single replicas without disruption budgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CERT_MANAGER_RELEASE = "cert-manager"
"""Helm release name; also the pods' `app.kubernetes.io/instance` label."""
TRUST_MANAGER_RELEASE = "trust-manager"
ROOT_CA_SECRET = "internal-root-ca"  # noqa: S105 (a Secret name, not a password)
"""Secret (kubernetes.io/tls) holding the root CA in cert-manager's namespace."""
TRUST_BUNDLE_NAME = "internal-root-ca"
"""Bundle name = the ConfigMap trust-manager writes in every labelled namespace."""
TRUST_BUNDLE_KEY = "ca.crt"
PRIORITY_CLASS = "system-cluster-critical"
ISSUER_READY_ANNOTATION = {"pulumi.com/waitFor": "condition=Ready"}
"""pulumi-kubernetes (>= 4.18) waits for this condition before the resource counts as created."""

HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


@dataclass(frozen=True, kw_only=True, slots=True)
class Replicas:
    """Replica counts of the cert-manager components in one environment."""

    controller: int
    webhook: int
    cainjector: int
    trust_manager: int


DEV_REPLICAS = Replicas(controller=1, webhook=1, cainjector=1, trust_manager=1)
PROD_REPLICAS = Replicas(controller=2, webhook=3, cainjector=2, trust_manager=2)


def replicas_for(*, prod: bool) -> Replicas:
    """The replica counts of an environment."""
    return PROD_REPLICAS if prod else DEV_REPLICAS


def _resources(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    # Requests reserve what the component needs; a memory limit (no CPU limit, so no
    # throttling of the webhook's TLS handshakes) bounds a leak.
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def spread_constraints(match_labels: dict[str, str]) -> list[dict[str, Any]]:
    """One pod per node where possible, never blocked by nodes the pods may not use.

    `nodeTaintsPolicy: Honor` leaves tainted (GPU) nodes out of the skew count, and
    `matchLabelKeys: [pod-template-hash]` counts only the pods of the current rollout,
    so maxSkew 1 with DoNotSchedule is always satisfiable on the eligible nodes.
    """
    return [
        {
            "maxSkew": 1,
            "topologyKey": HOSTNAME_TOPOLOGY,
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",
            "labelSelector": {"matchLabels": dict(match_labels)},
            "matchLabelKeys": ["pod-template-hash"],
        }
    ]


def _component_labels(name: str, component: str) -> dict[str, str]:
    # The cert-manager chart labels its pods app.kubernetes.io/{name,instance,component}.
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": CERT_MANAGER_RELEASE,
        "app.kubernetes.io/component": component,
    }


def _ha_block(replicas: int, labels: dict[str, str]) -> dict[str, Any]:
    """replicaCount, plus a PDB and a spread only where there is more than one replica."""
    block: dict[str, Any] = {"replicaCount": replicas}
    if replicas > 1:
        block["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
        block["topologySpreadConstraints"] = spread_constraints(labels)
    return block


def cert_manager_values(*, prod: bool) -> dict[str, Any]:
    """Values of the cert-manager chart (keys checked against its documented values).

    CRDs come from the chart (`crds.enabled`) and are kept when the release is removed
    (`crds.keep`), so an uninstall never cascades to every Certificate. The chart's
    post-install `startupapicheck` Job stays on: Helm waits for hook Jobs, so the release
    only succeeds once the webhook answers API requests, which is what custom resources
    created afterwards need.
    """
    replicas = replicas_for(prod=prod)
    controller = _ha_block(replicas.controller, _component_labels("cert-manager", "controller"))
    webhook = _ha_block(replicas.webhook, _component_labels("webhook", "webhook"))
    cainjector = _ha_block(replicas.cainjector, _component_labels("cainjector", "cainjector"))
    return {
        "crds": {"enabled": True, "keep": True},
        "global": {"priorityClassName": PRIORITY_CLASS},
        **controller,
        "resources": _resources("20m", "96Mi", "512Mi"),
        "webhook": {**webhook, "resources": _resources("10m", "48Mi", "256Mi")},
        "cainjector": {**cainjector, "resources": _resources("10m", "96Mi", "512Mi")},
        "startupapicheck": {"enabled": True, "timeout": "5m", "backoffLimit": 4},
        "enableCertificateOwnerRef": True,
        "prometheus": {"enabled": True, "servicemonitor": {"enabled": False}},
    }


def trust_manager_values(*, prod: bool, trust_namespace: str) -> dict[str, Any]:
    """Values of the trust-manager chart.

    The trust namespace is where Bundle sources are read from (the root CA Secret lives
    in cert-manager's namespace). No public CA package (`defaultPackage`): the bundle
    carries only the internal root. Secret targets stay off, so trust-manager needs no
    read access to every Secret of the cluster.
    """
    replicas = replicas_for(prod=prod).trust_manager
    values: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        "app": {"trust": {"namespace": trust_namespace}, "logFormat": "json"},
        "defaultPackage": {"enabled": False},
        "secretTargets": {"enabled": False},
        "replicaCount": replicas,
        "priorityClassName": PRIORITY_CLASS,
        "resources": _resources("10m", "64Mi", "256Mi"),
    }
    if replicas > 1:
        values["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
        values["topologySpreadConstraints"] = spread_constraints(
            {
                "app.kubernetes.io/name": TRUST_MANAGER_RELEASE,
                "app.kubernetes.io/instance": TRUST_MANAGER_RELEASE,
            }
        )
    return values


def ca_issuer_spec(*, secret_name: str) -> dict[str, Any]:
    """ClusterIssuer spec signing with the CA in `secret_name` (cert-manager's namespace)."""
    return {"ca": {"secretName": secret_name}}


def trust_bundle_spec(*, secret_name: str, namespace_label: str) -> dict[str, Any]:
    """Bundle spec: the root CA certificate into a ConfigMap of every labelled namespace."""
    return {
        "sources": [{"secret": {"name": secret_name, "key": "tls.crt"}}],
        "target": {
            "configMap": {"key": TRUST_BUNDLE_KEY},
            "namespaceSelector": {"matchLabels": {namespace_label: "enabled"}},
        },
    }

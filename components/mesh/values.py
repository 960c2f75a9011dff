"""Linkerd chart values and authorization policies, as pure functions of config.

Every values key used here is a documented key of the pinned chart
(`components/chart_values/linkerd-*.txt`; a test checks them).
"""

from __future__ import annotations

from typing import Any

from components.cluster.namespaces import LLM_GATEWAY_PORT, VLLM_PORT
from components.inference.endpoints import INFERENCE_NAMESPACE, MODEL_SERVER_COMPONENT

IDENTITY_ISSUER_SECRET = "linkerd-identity-issuer"  # noqa: S105 (a Secret's name)
TRUST_ROOTS_CONFIGMAP = "linkerd-identity-trust-roots"
TRUST_ROOTS_KEY = "ca-bundle.crt"
TRUST_DOMAIN = "cluster.local"
K3S_CNI_NET_DIR = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
K3S_CNI_BIN_DIR = "/var/lib/rancher/k3s/data/cni"

_NOT_WEBHOOKED = [
    {"key": "config.linkerd.io/admission-webhooks", "operator": "NotIn", "values": ["disabled"]},
    # kube-system and cert-manager must never wait on a fail-closed webhook of the mesh
    # (cert-manager issues the mesh's own identity).
    {
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": ["kube-system", "cert-manager"],
    },
]


def control_plane_values(*, prod: bool) -> dict[str, Any]:
    """linkerd-control-plane values: external CA via cert-manager, CNI, HA on prod."""
    selector = {"matchExpressions": _NOT_WEBHOOKED}
    values: dict[str, Any] = {
        "identityTrustDomain": TRUST_DOMAIN,
        # The trust roots ConfigMap and the issuer Secret come from this program and
        # cert-manager, not from the chart.
        "identity": {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}},
        "cniEnabled": True,
        "proxyInjector": {"namespaceSelector": selector},
        "profileValidator": {"namespaceSelector": selector},
        "policyValidator": {"namespaceSelector": selector},
        "proxy": {
            # A known pitfall for long requests: after a 10 s protocol-detection timeout the
            # proxy treats a connection as opaque TCP (no HTTP policy, no metrics). These
            # raise that timeout to "never"; the proxy has no per-request timeout, so a
            # generation that streams for many minutes is not cut.
            "disableInboundProtocolDetectTimeout": True,
            "disableOutboundProtocolDetectTimeout": True,
            "resources": {
                "cpu": {"request": "50m" if not prod else "100m"},
                "memory": {"request": "20Mi", "limit": "250Mi"},
            },
        },
    }
    if prod:
        values.update(
            {
                "controllerReplicas": 3,
                "enablePodDisruptionBudget": True,
                "enablePodAntiAffinity": True,
                "webhookFailurePolicy": "Fail",
                "controllerResources": {
                    "cpu": {"request": "100m"},
                    "memory": {"request": "50Mi", "limit": "250Mi"},
                },
            }
        )
    else:
        values["controllerReplicas"] = 1
    return values


def cni_values() -> dict[str, Any]:
    """linkerd2-cni values for k3s's CNI paths."""
    return {"destCNINetDir": K3S_CNI_NET_DIR, "destCNIBinDir": K3S_CNI_BIN_DIR}


def crds_values() -> dict[str, Any]:
    """linkerd-crds values: the Gateway API CRDs Linkerd's policy needs (k3s has none)."""
    return {"installGatewayAPI": True}


def identity_issuer_spec(*, hours: int, renew_before_hours: int, issuer: str) -> dict[str, Any]:
    """cert-manager Certificate of Linkerd's identity issuer, signed by the trust anchor."""
    return {
        "secretName": IDENTITY_ISSUER_SECRET,
        "duration": f"{hours}h0m0s",
        "renewBefore": f"{renew_before_hours}h0m0s",
        "issuerRef": {"name": issuer, "kind": "Issuer", "group": "cert-manager.io"},
        "commonName": f"identity.linkerd.{TRUST_DOMAIN}",
        "dnsNames": [f"identity.linkerd.{TRUST_DOMAIN}"],
        "isCA": True,
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": ["cert sign", "crl sign", "server auth", "client auth"],
    }


def authorization(
    *,
    server: str,
    namespace: str,
    pod_labels: dict[str, str],
    port: int,
    client_sa: str,
    client_ns: str,
) -> list[dict[str, Any]]:
    """A Server, a MeshTLSAuthentication and an AuthorizationPolicy: only one client identity."""
    authn = f"{server}-clients"
    return [
        {
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "Server",
            "metadata": {"name": server, "namespace": namespace},
            "spec": {
                "podSelector": {"matchLabels": pod_labels},
                "port": port,
                "proxyProtocol": "HTTP/1",
            },
        },
        {
            "apiVersion": "policy.linkerd.io/v1alpha1",
            "kind": "MeshTLSAuthentication",
            "metadata": {"name": authn, "namespace": namespace},
            "spec": {
                "identityRefs": [
                    {"kind": "ServiceAccount", "name": client_sa, "namespace": client_ns}
                ]
            },
        },
        {
            "apiVersion": "policy.linkerd.io/v1alpha1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": f"{server}-only-{client_ns}", "namespace": namespace},
            "spec": {
                "targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": server},
                "requiredAuthenticationRefs": [
                    {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": authn}
                ],
            },
        },
    ]


def platform_authorizations() -> list[dict[str, Any]]:
    """Only the LLM gateway may call the model servers; only the ingress may call the gateway."""
    return [
        *authorization(
            server="model-servers",
            namespace=INFERENCE_NAMESPACE,
            pod_labels={"app.kubernetes.io/component": MODEL_SERVER_COMPONENT},
            port=VLLM_PORT,
            client_sa="litellm",
            client_ns="llm-gateway",
        ),
        *authorization(
            server="litellm",
            namespace="llm-gateway",
            pod_labels={"app.kubernetes.io/name": "litellm"},
            port=LLM_GATEWAY_PORT,
            client_sa="traefik",
            client_ns="traefik",
        ),
    ]

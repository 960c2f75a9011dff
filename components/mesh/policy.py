"""Who may call whom inside the mesh, as `policy.linkerd.io` objects (pure data).

Two servers are protected, each deny-by-default (`accessPolicy: deny`):

* the model servers (namespace `inference`, port 8000): only the LLM gateway's identity
  (ServiceAccount `litellm` in `llm-gateway`);
* the LLM gateway (namespace `llm-gateway`, port 4000): only the ingress's identity
  (ServiceAccount `traefik` in `traefik`).

Both serve Prometheus metrics and their kubelet probes on that same port, so the policy
is per route rather than per server. A `policy.linkerd.io` HTTPRoute splits each port in
three, and each route gets its own `AuthorizationPolicy`:

* `<server>-api`, every path: the one client identity (`MeshTLSAuthentication`);
* `<server>-metrics`, GET `/metrics…`: the scrape networks (`NetworkAuthentication`),
  because Prometheus runs unmeshed, so it has no identity to name; the namespaces'
  NetworkPolicies already narrow who reaches the port at all;
* `<server>-probes`, GET of the exact probe paths: the probe networks. Once any route
  is attached to a Server, Linkerd drops its built-in probe authorization (policy
  controller, `http_routes()` in k8s/index/src/inbound/index.rs at edge-26.8.3), so the
  probes need this route or the pods never become ready. The networks are Linkerd's own
  default for probes (`policyController.probeNetworks`): every address, but only the
  probe paths, only GET.

Gateway API precedence picks the longest matching path, so `/metrics` from the API
client's identity falls under the metrics route, and `/v1/...` from the scrape networks
under the API route: neither gets the other's access. Routes carry no `timeouts`:
Linkerd has no default one, and a multi-minute stream must not get one.

Servers declare `proxyProtocol: HTTP/1`: the inbound proxy skips protocol detection (no
10 s detection window, never a fall-back to opaque TCP that would bypass route policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from components.cluster.namespaces import LLM_GATEWAY_PORT, VLLM_PORT
from components.inference.endpoints import INFERENCE_NAMESPACE, MODEL_SERVER_COMPONENT

POLICY_GROUP = "policy.linkerd.io"
SERVER_API = f"{POLICY_GROUP}/v1beta3"
ROUTE_API = f"{POLICY_GROUP}/v1beta3"
AUTH_API = f"{POLICY_GROUP}/v1alpha1"
PROBE_NETWORKS = ("0.0.0.0/0", "::/0")
"""Linkerd's default `policyController.probeNetworks`: kubelets probe from node addresses."""
METRICS_PATH_PREFIX = "/metrics"
"""Matches `/metrics` and `/metrics/` (LiteLLM mounts its exporter at `/metrics/`)."""

LLM_GATEWAY_NAMESPACE = "llm-gateway"
LLM_GATEWAY_SERVICE_ACCOUNT = "litellm"
INGRESS_NAMESPACE = "traefik"
INGRESS_SERVICE_ACCOUNT = "traefik"


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """A mesh identity: a ServiceAccount in a namespace."""

    namespace: str
    service_account: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ProtectedServer:
    """A port of some pods that only one client identity may call."""

    name: str
    namespace: str
    pod_labels: dict[str, str]
    port: int
    client: Identity
    probe_paths: tuple[str, ...]
    """Every HTTP probe path of the pods on this port (they get a probe route)."""


def platform_servers() -> tuple[ProtectedServer, ...]:
    """The servers the platform protects: model servers and the LLM gateway."""
    return (
        ProtectedServer(
            name="model-servers",
            namespace=INFERENCE_NAMESPACE,
            pod_labels={"app.kubernetes.io/component": MODEL_SERVER_COMPONENT},
            port=VLLM_PORT,
            client=Identity(
                namespace=LLM_GATEWAY_NAMESPACE, service_account=LLM_GATEWAY_SERVICE_ACCOUNT
            ),
            # components/inference/model_server.py: startup, readiness and liveness.
            probe_paths=("/health",),
        ),
        ProtectedServer(
            name="litellm",
            namespace=LLM_GATEWAY_NAMESPACE,
            pod_labels={"app.kubernetes.io/name": "litellm"},
            port=LLM_GATEWAY_PORT,
            client=Identity(namespace=INGRESS_NAMESPACE, service_account=INGRESS_SERVICE_ACCOUNT),
            # components/llm_gateway/gateway.py: startup/liveness and readiness.
            probe_paths=("/health/liveliness", "/health/readiness"),
        ),
    )


def _meta(name: str, namespace: str) -> dict[str, str]:
    return {"name": name, "namespace": namespace}


def _route(server: ProtectedServer, role: str, matches: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": ROUTE_API,
        "kind": "HTTPRoute",
        "metadata": _meta(f"{server.name}-{role}", server.namespace),
        "spec": {
            "parentRefs": [{"group": POLICY_GROUP, "kind": "Server", "name": server.name}],
            "rules": [{"matches": matches}],
        },
    }


def _authorization(
    server: ProtectedServer, role: str, authn_kind: str, authn_name: str
) -> dict[str, Any]:
    return {
        "apiVersion": AUTH_API,
        "kind": "AuthorizationPolicy",
        "metadata": _meta(f"{server.name}-{role}", server.namespace),
        "spec": {
            "targetRef": {
                "group": POLICY_GROUP,
                "kind": "HTTPRoute",
                "name": f"{server.name}-{role}",
            },
            "requiredAuthenticationRefs": [
                {"group": POLICY_GROUP, "kind": authn_kind, "name": authn_name}
            ],
        },
    }


def _networks(cidrs: Sequence[str]) -> list[dict[str, str]]:
    return [{"cidr": cidr} for cidr in cidrs]


def server_policy(
    server: ProtectedServer, *, scrape_cidrs: Sequence[IPv4Network]
) -> list[dict[str, Any]]:
    """The Server, its three routes, their authentications and authorization policies."""
    ns = server.namespace
    clients, scrapers, probers = (
        f"{server.name}-clients",
        f"{server.name}-scrapers",
        f"{server.name}-probers",
    )
    return [
        {
            "apiVersion": SERVER_API,
            "kind": "Server",
            "metadata": _meta(server.name, ns),
            "spec": {
                "podSelector": {"matchLabels": dict(server.pod_labels)},
                "port": server.port,
                "proxyProtocol": "HTTP/1",
                "accessPolicy": "deny",
            },
        },
        _route(server, "api", [{"path": {"type": "PathPrefix", "value": "/"}}]),
        _route(
            server,
            "metrics",
            [{"path": {"type": "PathPrefix", "value": METRICS_PATH_PREFIX}, "method": "GET"}],
        ),
        _route(
            server,
            "probes",
            [
                {"path": {"type": "Exact", "value": path}, "method": "GET"}
                for path in server.probe_paths
            ],
        ),
        {
            "apiVersion": AUTH_API,
            "kind": "MeshTLSAuthentication",
            "metadata": _meta(clients, ns),
            "spec": {
                "identityRefs": [
                    {
                        "kind": "ServiceAccount",
                        "name": server.client.service_account,
                        "namespace": server.client.namespace,
                    }
                ]
            },
        },
        {
            "apiVersion": AUTH_API,
            "kind": "NetworkAuthentication",
            "metadata": _meta(scrapers, ns),
            "spec": {"networks": _networks([str(cidr) for cidr in scrape_cidrs])},
        },
        {
            "apiVersion": AUTH_API,
            "kind": "NetworkAuthentication",
            "metadata": _meta(probers, ns),
            "spec": {"networks": _networks(PROBE_NETWORKS)},
        },
        _authorization(server, "api", "MeshTLSAuthentication", clients),
        _authorization(server, "metrics", "NetworkAuthentication", scrapers),
        _authorization(server, "probes", "NetworkAuthentication", probers),
    ]


def platform_policy(*, scrape_cidrs: Sequence[IPv4Network]) -> list[dict[str, Any]]:
    """Every policy object of the platform, in a stable order."""
    return [
        body
        for server in platform_servers()
        for body in server_policy(server, scrape_cidrs=scrape_cidrs)
    ]

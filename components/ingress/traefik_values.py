"""Pure builders of Traefik's Helm values and of the ingress custom resource specs.

Deterministic functions of typed settings (`TraefikSettings`), so tests check them
without the engine and `TraefikIngress` only wires them. Keys of the Helm values are
checked against the chart's documented values in tests/unit/test_ingress.py.

Streaming: LLM responses are server-sent events that last minutes. Traefik flushes
`text/event-stream` responses as they come; what could hold them back is a middleware
that buffers (`buffering` keeps the whole response before sending it, and its CRD has no
switch to turn that off: traefik/traefik#12869) or compresses (`compress`). So the
body-size limit, which is a `buffering` middleware, is only on non-streaming routes;
streaming routes rely on the edge's `client_max_body_size`. No route compresses.
Timeouts: `writeTimeout` 0 means Traefik never cuts a response however long it
streams; `readTimeout` (reading the request) is at least the edge's read timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

RELEASE = "traefik"
NAMESPACE = "traefik"
SERVICE_ACCOUNT = "traefik"
DEFAULT_CERT_SECRET = "traefik-default-tls"  # noqa: S105 (a Secret name, not a password)
PRIORITY_CLASS = "system-cluster-critical"
MIB = 1024 * 1024
REQUEST_BODY_IN_MEMORY_BYTES = 2 * MIB
"""Larger request bodies spill to disk while `buffering` reads them."""
IDLE_TIMEOUT_SECONDS = 180
HSTS_SECONDS = 31_536_000
PROD_REPLICAS = 2

SECURITY_HEADERS = "security-headers"
RATE_LIMIT = "rate-limit"
BODY_LIMIT = "body-limit"

# Forward-secret AEAD suites only for TLS 1.2 (TLS 1.3 suites are not configurable).
TLS12_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class TraefikSettings:
    """What Traefik's values depend on, from the stack config."""

    prod: bool
    read_timeout_seconds: int
    """At least the edge's read timeout, so a slow upload through the edge is not cut here."""
    trusted_proxy_cidrs: tuple[str, ...]
    """Sources whose X-Forwarded-For is kept (ServiceLB pods, the edge tunnel)."""

    def __post_init__(self) -> None:
        if self.read_timeout_seconds < 1:
            raise ValueError(
                f"read_timeout_seconds must be positive, got {self.read_timeout_seconds}"
            )
        if not self.trusted_proxy_cidrs:
            raise ValueError("trusted_proxy_cidrs must name at least one network")


def selector_labels() -> dict[str, str]:
    """The labels the chart puts on Traefik's pods (name, and instance `<release>-<ns>`)."""
    return {
        "app.kubernetes.io/name": "traefik",
        "app.kubernetes.io/instance": f"{RELEASE}-{NAMESPACE}",
    }


def traefik_values(settings: TraefikSettings) -> dict[str, Any]:
    """Values of the Traefik chart."""
    replicas = PROD_REPLICAS if settings.prod else 1
    values: dict[str, Any] = {
        "deployment": {"replicas": replicas},
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "priorityClassName": PRIORITY_CLASS,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        # k3s's ServiceLB (klipper-lb) answers for LoadBalancer Services on the nodes.
        "service": {"spec": {"type": "LoadBalancer"}},
        "ports": {
            "web": {
                "http": {
                    "redirections": {
                        "entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}
                    }
                }
            },
            "websecure": {
                "http": {"tls": {"enabled": True}},
                "forwardedHeaders": {"trustedIPs": list(settings.trusted_proxy_cidrs)},
                "transport": {
                    "respondingTimeouts": {
                        "readTimeout": f"{settings.read_timeout_seconds}s",
                        "writeTimeout": "0s",
                        "idleTimeout": f"{IDLE_TIMEOUT_SECONDS}s",
                    }
                },
            },
        },
        "log": {"format": "json", "level": "INFO"},
        # Headers are dropped from access logs (the default, set explicitly): API keys
        # travel in Authorization.
        "accessLog": {
            "enabled": True,
            "format": "json",
            "fields": {"defaultMode": "keep", "headers": {"defaultMode": "drop"}},
        },
        "metrics": {
            "prometheus": {
                "entryPoint": "metrics",
                "addEntryPointsLabels": True,
                "addRoutersLabels": True,
                "addServicesLabels": True,
                "service": {"enabled": True},
            }
        },
        # Routes are IngressRoutes made by components.ingress.publish, which references
        # the shared middlewares across namespaces; plain Ingress objects are not served.
        "providers": {
            "kubernetesCRD": {"enabled": True, "allowCrossNamespace": True},
            "kubernetesIngress": {"enabled": False},
        },
        "ingressRoute": {"dashboard": {"enabled": False}},
        # A TLS options conflict on a host disables its routers instead of silently
        # falling back to the default options.
        "core": {"strictTLSOptions": True},
    }
    if settings.prod:
        values["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
        values["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector_labels()},
                    }
                ]
            }
        }
        # With required anti-affinity a surge pod has no node to go to on a cluster
        # with as many nodes as replicas; replace one pod at a time instead.
        values["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
        }
    return values


BUNDLED_KEYS = ("ports", "log", "accessLog", "metrics", "core")
"""What the platform sets on k3s's own Traefik; k3s keeps the rest (image, Service, replicas,
its Ingress provider, which other workloads of an adopted cluster may use)."""


def bundled_traefik_values(settings: TraefikSettings) -> dict[str, Any]:
    """Values for k3s's bundled Traefik (its HelmChartConfig): the same entry points
    (HTTP to HTTPS, TLS, trusted proxies, timeouts), logs, metrics and TLS options strictness
    as the pinned release, and cross-namespace middlewares, which the routes rely on."""
    values = traefik_values(settings)
    bundled = {key: values[key] for key in BUNDLED_KEYS}
    bundled["providers"] = {"kubernetesCRD": values["providers"]["kubernetesCRD"]}
    return bundled


def default_certificate_spec(*, domain: str, issuer_name: str) -> dict[str, Any]:
    """Certificate for `*.<domain>` and `<domain>`: Traefik's default TLS certificate."""
    return {
        "secretName": DEFAULT_CERT_SECRET,
        "commonName": f"*.{domain}",
        "dnsNames": [f"*.{domain}", domain],
        "issuerRef": {"name": issuer_name, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": ["server auth", "digital signature"],
        "duration": "2160h",
        "renewBefore": "720h",
    }


def tls_store_spec() -> dict[str, Any]:
    """The `default` TLSStore: the internal-CA certificate for hosts without their own."""
    return {"defaultCertificate": {"secretName": DEFAULT_CERT_SECRET}}


def tls_option_spec() -> dict[str, Any]:
    """The `default` TLSOption: TLS 1.2 or newer, forward-secret AEAD suites."""
    return {
        "minVersion": "VersionTLS12",
        "cipherSuites": list(TLS12_CIPHER_SUITES),
        "curvePreferences": ["X25519", "CurveP256", "CurveP384"],
    }


def security_headers_spec() -> dict[str, Any]:
    """Response security headers; adds headers only, never holds the body back."""
    return {
        "headers": {
            "stsSeconds": HSTS_SECONDS,
            "stsIncludeSubdomains": True,
            "contentTypeNosniff": True,
            "frameDeny": True,
            "referrerPolicy": "no-referrer",
            # An empty value removes the header from the response.
            "customResponseHeaders": {"Server": "", "X-Powered-By": ""},
        }
    }


def rate_limit_spec(*, average: int, burst: int) -> dict[str, Any]:
    """Per-client rate limit, a second line behind the edge's per-key limit.

    The client is the right-most X-Forwarded-For address (`depth: 1`): the edge sets it
    to the caller's address, and Traefik keeps it only from `trustedIPs`; from anyone
    else Traefik replaces the header with the peer address. The limit is per Traefik
    replica (in memory). It decides before forwarding, so streams are unaffected.
    """
    if burst < 1 or average < 1:
        raise ValueError("rate limit average and burst must be positive")
    return {
        "rateLimit": {
            "average": average,
            "burst": burst,
            "period": "1s",
            "sourceCriterion": {"ipStrategy": {"depth": 1}},
        }
    }


def body_limit_spec(*, max_body_mib: int) -> dict[str, Any]:
    """Request body limit (413 above it). Buffers the response too: not for streaming."""
    max_bytes = max_body_mib * MIB
    return {
        "buffering": {
            "maxRequestBodyBytes": max_bytes,
            "memRequestBodyBytes": min(max_bytes, REQUEST_BODY_IN_MEMORY_BYTES),
        }
    }


BUFFERING_OR_COMPRESSING = frozenset({"buffering", "compress"})
"""Middleware kinds that hold a response back; never on a streaming route."""


def holds_responses(spec: dict[str, Any]) -> bool:
    """Whether a Middleware spec buffers or compresses responses."""
    return bool(BUFFERING_OR_COMPRESSING & set(spec))


@dataclass(frozen=True, kw_only=True, slots=True)
class MiddlewareDef:
    """A shared middleware: its name and spec."""

    name: str
    spec: dict[str, Any]

    @property
    def streaming_safe(self) -> bool:
        """True when the middleware neither buffers nor compresses responses."""
        return not holds_responses(self.spec)


def shared_middlewares(*, average: int, burst: int, max_body_mib: int) -> Sequence[MiddlewareDef]:
    """The middlewares every published route gets, in the order they apply."""
    return (
        MiddlewareDef(name=SECURITY_HEADERS, spec=security_headers_spec()),
        MiddlewareDef(name=RATE_LIMIT, spec=rate_limit_spec(average=average, burst=burst)),
        MiddlewareDef(name=BODY_LIMIT, spec=body_limit_spec(max_body_mib=max_body_mib)),
    )

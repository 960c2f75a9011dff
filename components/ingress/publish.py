"""PublishedService: the one way an area publishes a Service at a host name through Traefik.

Creates, in the service's namespace, a cert-manager `Certificate` for the host issued by
the internal CA, and a Traefik `IngressRoute` on the `websecure` entry point that routes
the host to the Service with that certificate and the platform's shared middlewares.
Streaming services get no middleware that buffers or compresses (Traefik's `buffering`
and `compress` would hold server-sent events back), which keeps tokens flowing.

Areas receive an `IngressHandle` from `Platform` and never reach into the ingress area.
Expects the explicit `k8s.Provider` carried by the handle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.labels import standard_labels


@dataclass(frozen=True)
class MiddlewareRef:
    """A Traefik Middleware by namespace and name."""

    namespace: str
    name: str


@dataclass(frozen=True, kw_only=True)
class IngressHandle:
    """What an area needs to publish through the platform's ingress."""

    domain: str
    """Services are published at `<host_prefix>.<domain>`."""
    issuer_name: str
    """ClusterIssuer of the internal CA."""
    provider: k8s.Provider
    crds_ready: Sequence[pulumi.Resource] = ()
    """Releases that install the Traefik and cert-manager CRDs and webhooks."""
    middlewares: Sequence[MiddlewareRef] = ()
    """Applied to every route."""
    streaming_safe_middlewares: Sequence[MiddlewareRef] = ()
    """The subset that never buffers or compresses, for streaming routes."""


@dataclass(frozen=True, kw_only=True)
class PublishArgs:
    """A Service to publish."""

    ingress: IngressHandle
    host_prefix: str
    namespace: pulumi.Input[str]
    service_name: pulumi.Input[str]
    service_port: int
    component: str
    """Area name, for labels."""
    streaming: bool = False
    """True for APIs that stream (server-sent events): only streaming-safe middlewares."""


def route_spec(
    *,
    host: str,
    service_name: str,
    service_port: int,
    middlewares: Sequence[MiddlewareRef],
    secret: str,
) -> dict[str, object]:
    """IngressRoute spec routing a host to a Service over TLS."""
    return {
        "entryPoints": ["websecure"],
        "routes": [
            {
                "kind": "Rule",
                "match": f"Host(`{host}`)",
                "middlewares": [{"name": m.name, "namespace": m.namespace} for m in middlewares],
                "services": [{"kind": "Service", "name": service_name, "port": service_port}],
            }
        ],
        "tls": {"secretName": secret},
    }


class PublishedService(pulumi.ComponentResource):
    """A Service reachable at `https://<host_prefix>.<domain>` with an internal-CA cert."""

    host: str
    url: str

    def __init__(
        self, name: str, args: PublishArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:ingress:PublishedService", name, None, opts)
        handle = args.ingress
        self.host = f"{args.host_prefix}.{handle.domain}"
        self.url = f"https://{self.host}"
        secret = f"{args.host_prefix}-tls"
        labels = standard_labels(name=args.host_prefix, component=args.component)
        child = pulumi.ResourceOptions(
            parent=self, provider=handle.provider, depends_on=list(handle.crds_ready)
        )

        certificate = k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": secret, "namespace": args.namespace, "labels": labels},
            spec={
                "secretName": secret,
                "dnsNames": [self.host],
                "issuerRef": {
                    "name": handle.issuer_name,
                    "kind": "ClusterIssuer",
                    "group": "cert-manager.io",
                },
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "duration": "2160h",
                "renewBefore": "720h",
            },
            opts=child,
        )
        middlewares = handle.streaming_safe_middlewares if args.streaming else handle.middlewares
        k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="traefik.io/v1alpha1",
            kind="IngressRoute",
            metadata={"name": args.host_prefix, "namespace": args.namespace, "labels": labels},
            spec=pulumi.Output.from_input(args.service_name).apply(
                lambda service: route_spec(
                    host=self.host,
                    service_name=service,
                    service_port=args.service_port,
                    middlewares=middlewares,
                    secret=secret,
                )
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[certificate])
            ),
        )
        self.register_outputs({"url": self.url})

"""TraefikIngress: the cluster's ingress, Traefik v3, with TLS from the internal CA.

Creates, in the namespace of the Traefik that serves (`ingress.mode`): `traefik` for the
platform's own, `kube-system` for k3s's bundled one:

* `platform`: the Traefik Helm release (pinned; CRDs from the chart's `crds/`): HTTP redirected to
  HTTPS, TLS on `websecure`, JSON logs and access logs, Prometheus metrics, a
  LoadBalancer Service that k3s's ServiceLB exposes on the nodes, ServiceAccount
  `traefik`; prod runs 2 replicas with a PodDisruptionBudget and pod anti-affinity
  (see `components.ingress.traefik_values`); `bundled`: instead, the `HelmChartConfig`
  `kube-system/traefik` through which k3s merges the platform's entry points, logs, metrics
  and cross-namespace middlewares into its own Traefik release (k3s docs, "Customizing
  Packaged Components with HelmChartConfig"); its CRDs are k3s's;
* a cert-manager `Certificate` for `*.<domain>` from the internal CA, the `default`
  `TLSStore` serving it, and the `default` `TLSOption` (TLS 1.2+);
* the shared `Middleware`s: security headers, an in-cluster rate limit (second line
  behind the edge) and a request body limit.

Exposes `handle`, the `IngressHandle` every area publishes through
(`components.ingress.publish`): the body limit buffers responses, so it is left out of
`streaming_safe_middlewares`. Every custom resource depends on the release installing
its CRD; certificates also on the PKI's `ready` (cert-manager and the CA issuer, which
waits for condition Ready). Expects the cluster's explicit `k8s.Provider`.

With `platform`, k3s's bundled Traefik must be disabled (`--disable=traefik`: bootstrap
mode does it; an existing cluster must have been started so, which `ingress.mode` makes the
stack file say). Either way every area publishes through the same `IngressHandle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import versions
from components.config import EdgeConfig, PlatformConfig
from components.helm import pinned_release
from components.labels import standard_labels

from .publish import IngressHandle, MiddlewareRef
from .traefik_values import (
    NAMESPACE,
    RELEASE,
    TraefikSettings,
    bundled_traefik_values,
    default_certificate_spec,
    shared_middlewares,
    tls_option_spec,
    tls_store_spec,
    traefik_values,
)

COMPONENT = "ingress"
READY_ANNOTATION = {"pulumi.com/waitFor": "condition=Ready"}
DEFAULT_EDGE_READ_TIMEOUT = int(EdgeConfig.model_fields["read_timeout_seconds"].default)


@dataclass(frozen=True, kw_only=True)
class TraefikIngressArgs:
    """Inputs of the ingress."""

    config: PlatformConfig
    """The stack config: `ingress` (domain, limits), `edge` (timeouts, tunnel), environment."""
    provider: k8s.Provider
    """The cluster's explicit provider."""
    issuer_name: str
    """ClusterIssuer of the internal CA (`InternalPki.issuer_name`)."""
    pki_ready: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """`InternalPki.ready`: certificates wait for cert-manager and the CA issuer."""
    namespace: pulumi.Input[str] = NAMESPACE
    """Traefik's namespace; pass the created Namespace's name so the ingress waits for it."""


def traefik_settings(config: PlatformConfig) -> TraefikSettings:
    """Traefik's settings from the stack config.

    The read timeout is the edge's (the default edge timeout without an edge); the edge's
    tunnel network joins the trusted proxies when the edge is on.
    """
    trusted = [str(cidr) for cidr in config.ingress.trusted_proxy_cidrs]
    read_timeout = DEFAULT_EDGE_READ_TIMEOUT
    if config.edge is not None and config.edge_enabled:
        read_timeout = config.edge.read_timeout_seconds
        tunnel = str(config.edge.wireguard.tunnel_cidr)
        if tunnel not in trusted:
            trusted.append(tunnel)
    return TraefikSettings(
        prod=config.is_prod,
        read_timeout_seconds=read_timeout,
        trusted_proxy_cidrs=tuple(trusted),
    )


class TraefikIngress(pulumi.ComponentResource):
    """Traefik with internal-CA TLS, TLS 1.2+, shared middlewares; exposes `handle`."""

    release: pulumi.Resource
    """The pinned Helm release, or the HelmChartConfig of k3s's bundled Traefik."""
    handle: IngressHandle

    def __init__(
        self, name: str, args: TraefikIngressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:ingress:TraefikIngress", name, None, opts)
        config = args.config
        ingress = config.ingress
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = standard_labels(name="traefik", component=COMPONENT)

        settings = traefik_settings(config)
        if config.ingress_mode == "bundled":
            self.release = k8s.apiextensions.CustomResource(
                f"{name}-bundled-traefik",
                api_version="helm.cattle.io/v1",
                kind="HelmChartConfig",
                metadata={"name": RELEASE, "namespace": "kube-system", "labels": labels},
                spec={"valuesContent": yaml.safe_dump(bundled_traefik_values(settings))},
                opts=child,
            )
        else:
            self.release = pinned_release(
                f"{name}-traefik",
                versions.TRAEFIK,
                release_name=RELEASE,
                namespace=args.namespace,
                overlays=args.config.helm_values,
                values=traefik_values(settings),
                opts=child,
            )
        after_release = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[self.release])
        )

        certificate = k8s.apiextensions.CustomResource(
            f"{name}-default-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={
                "name": "traefik-default",
                "namespace": args.namespace,
                "labels": labels,
                "annotations": dict(READY_ANNOTATION),
            },
            spec=default_certificate_spec(domain=ingress.domain, issuer_name=args.issuer_name),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=list(args.pki_ready))
            ),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-tls-store",
            api_version="traefik.io/v1alpha1",
            kind="TLSStore",
            metadata={"name": "default", "namespace": args.namespace, "labels": labels},
            spec=tls_store_spec(),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.release, certificate])
            ),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-tls-option",
            api_version="traefik.io/v1alpha1",
            kind="TLSOption",
            metadata={"name": "default", "namespace": args.namespace, "labels": labels},
            spec=tls_option_spec(),
            opts=after_release,
        )

        all_refs: list[MiddlewareRef] = []
        streaming_refs: list[MiddlewareRef] = []
        middlewares: list[pulumi.Resource] = []
        for middleware in shared_middlewares(
            average=ingress.rate_limit_average,
            burst=ingress.rate_limit_burst,
            max_body_mib=ingress.max_body_mib,
        ):
            middlewares.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-middleware-{middleware.name}",
                    api_version="traefik.io/v1alpha1",
                    kind="Middleware",
                    metadata={
                        "name": middleware.name,
                        "namespace": args.namespace,
                        "labels": labels,
                    },
                    spec=middleware.spec,
                    opts=after_release,
                )
            )
            ref = MiddlewareRef(namespace=config.ingress_namespace, name=middleware.name)
            all_refs.append(ref)
            if middleware.streaming_safe:
                streaming_refs.append(ref)

        self.handle = IngressHandle(
            domain=ingress.domain,
            issuer_name=args.issuer_name,
            provider=args.provider,
            crds_ready=(self.release, *args.pki_ready, *middlewares),
            middlewares=tuple(all_refs),
            streaming_safe_middlewares=tuple(streaming_refs),
        )
        self.register_outputs(
            {"domain": ingress.domain, "middlewares": [ref.name for ref in all_refs]}
        )

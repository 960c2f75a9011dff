"""Config of the cluster platform services: internal PKI, ingress and service mesh."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Literal

from pydantic import Field, model_validator

from ._base import DnsLabel, FrozenModel, Ipv4Network, Problem, raise_if_problems
from .edge import HostName

K3S_DEFAULT_CLUSTER_CIDR = IPv4Network("10.42.0.0/16")


class PkiConfig(FrozenModel):
    """The internal CA: cert-manager, a self-signed root and the CA ClusterIssuer."""

    ca_issuer_name: DnsLabel = Field(
        default="internal-ca", description="ClusterIssuer every area gets certificates from."
    )
    root_ca_common_name: str = Field(
        default="llm-platform internal root CA",
        min_length=1,
        max_length=64,
        description="Common name of the self-signed internal root CA.",
    )
    root_ca_days: int = Field(
        default=3650, ge=365, le=7300, description="Validity of the root CA certificate."
    )
    root_ca_renew_before_days: int = Field(
        default=90,
        ge=30,
        le=365,
        description="Within this many days of expiry, the next `pulumi up` re-signs the root "
        "CA certificate with the same key (issued certificates stay valid).",
    )
    trust_bundle_label: str = Field(
        default="llm-platform.io/trust-bundle",
        pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
        description="Namespaces carrying this label (value `enabled`) get the root CA ConfigMap.",
    )

    @model_validator(mode="after")
    def _renew_before_lifetime(self) -> PkiConfig:
        if self.root_ca_renew_before_days >= self.root_ca_days:
            raise_if_problems(
                [
                    Problem(
                        ("root_ca_renew_before_days",),
                        f"must be shorter than root_ca_days ({self.root_ca_days})",
                        self.root_ca_renew_before_days,
                    )
                ]
            )
        return self


class IngressConfig(FrozenModel):
    """Traefik inside the cluster, reached by the edge through the tunnel."""

    mode: Literal["platform", "bundled"] | None = Field(
        default=None,
        description="Which Traefik serves the routes. `platform` (the default in `bootstrap` "
        "mode, which starts k3s with `--disable=traefik`) installs the pinned Traefik in "
        "namespace `traefik`. `bundled` adopts the one k3s runs in `kube-system`, configured "
        "through its HelmChartConfig (`existing` mode, without the mesh). Required in "
        "`existing` mode: the program cannot see which one the cluster runs.",
    )
    domain: HostName = Field(
        default="llm.home.arpa", description="Services are published at `<name>.<domain>`."
    )
    rate_limit_average: int = Field(
        default=100, ge=1, le=100_000, description="Requests/s per source, behind the edge."
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, le=100_000, description="Requests a source may send at once."
    )
    max_body_mib: int = Field(
        default=10,
        ge=1,
        le=1024,
        description="Largest request body on non-streaming routes (streaming routes rely on "
        "the edge's limit: Traefik's body limit buffers responses).",
    )
    trusted_proxy_cidrs: tuple[Ipv4Network, ...] = Field(
        default=(K3S_DEFAULT_CLUSTER_CIDR,),
        description="Sources whose X-Forwarded-For Traefik keeps, so the rate limit sees the "
        "client address: ServiceLB forwards from pod addresses (k3s's default cluster CIDR). "
        "The edge's tunnel network is added when the edge is on.",
    )


class MeshConfig(FrozenModel):
    """Linkerd with identity issued by cert-manager."""

    enabled: bool = Field(
        default=True,
        description="Install Linkerd and mesh the platform's workloads (mutual TLS between "
        "pods); off, in-cluster traffic is plain HTTP.",
    )
    viz: bool = Field(default=False, description="Install linkerd-viz (dashboard, tap).")
    trust_anchor_days: int = Field(
        default=3650, ge=365, le=7300, description="Validity of each trust anchor certificate."
    )
    trust_anchors: tuple[DnsLabel, ...] = Field(
        default=("v1",),
        min_length=1,
        max_length=2,
        description="Ids of the trust anchors every proxy trusts (all are bundled). Each id "
        "is its own key and certificate: rotating adds a new id, moves "
        "`signing_trust_anchor` to it, then drops the old id (docs/mesh.md).",
    )
    signing_trust_anchor: DnsLabel | None = Field(
        default=None,
        description="The trust anchor that signs the identity issuer; defaults to the first "
        "of `trust_anchors`, so adding a second anchor changes nothing until this is set.",
    )
    identity_issuer_hours: int = Field(
        default=48,
        ge=26,
        le=8760,
        description="Lifetime of the identity issuer certificate cert-manager renews.",
    )
    identity_issuer_renew_before_hours: int = Field(
        default=25,
        ge=25,
        le=8000,
        description="cert-manager renews the identity issuer this long before it expires; "
        "more than the 24 h life of the workload certificates it signs, so the issuer "
        "always outlives them.",
    )
    scrape_cidrs: tuple[Ipv4Network, ...] = Field(
        default=(K3S_DEFAULT_CLUSTER_CIDR,),
        min_length=1,
        description="Sources allowed to GET `/metrics` of the model servers and the LLM "
        "gateway without a mesh identity (Prometheus is not meshed); every other route "
        "of those servers needs the caller's mesh identity.",
    )

    @property
    def signing_anchor(self) -> str:
        """The id of the trust anchor that signs the identity issuer."""
        return self.signing_trust_anchor or self.trust_anchors[0]

    @model_validator(mode="after")
    def _rules(self) -> MeshConfig:
        problems: list[Problem] = []
        if self.identity_issuer_renew_before_hours >= self.identity_issuer_hours:
            problems.append(
                Problem(
                    ("identity_issuer_renew_before_hours",),
                    f"must be shorter than identity_issuer_hours ({self.identity_issuer_hours})",
                    self.identity_issuer_renew_before_hours,
                )
            )
        if len(set(self.trust_anchors)) != len(self.trust_anchors):
            problems.append(
                Problem(("trust_anchors",), "ids must be different", list(self.trust_anchors))
            )
        if self.signing_anchor not in self.trust_anchors:
            problems.append(
                Problem(
                    ("signing_trust_anchor",),
                    f"must be one of trust_anchors {list(self.trust_anchors)}",
                    self.signing_trust_anchor,
                )
            )
        raise_if_problems(problems)
        return self

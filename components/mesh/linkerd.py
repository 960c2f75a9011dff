"""ServiceMesh: Linkerd with its identity from cert-manager, and who may call whom.

In order: the trust anchor (an ECDSA P-256 CA made by pulumi-tls: the chart needs the
anchor before anything is installed, its expiry becomes a stack output, and it survives a
rebuilt cluster; cert-manager never sees its rotation, which is a deliberate, documented
step) kept in a Secret behind a cert-manager `Issuer` in `linkerd`; the trust roots
ConfigMap the chart reads with `identity.externalCA`; the identity issuer `Certificate`
(48 h by default, renewed by cert-manager, awaited Ready); then the releases in the order
Linkerd needs them: `linkerd-crds`, `linkerd2-cni` (k3s paths, so no privileged init
container), `linkerd-control-plane` (issuer scheme `kubernetes.io/tls`, HA on prod, the
injector and validators never act on kube-system or cert-manager), optionally `linkerd-viz`;
and the authorization: only the LLM gateway's identity may call the model servers, only
Traefik's may call the gateway. Every custom resource waits for the release installing its
CRD; the control plane waits for its issuer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components import versions
from components.config import PlatformConfig
from components.labels import standard_labels
from components.mesh.values import (
    TRUST_ROOTS_CONFIGMAP,
    TRUST_ROOTS_KEY,
    cni_values,
    control_plane_values,
    crds_values,
    identity_issuer_spec,
    platform_authorizations,
)

NAMESPACE = "linkerd"
CNI_NAMESPACE = "linkerd-cni"
VIZ_NAMESPACE = "linkerd-viz"
TRUST_ANCHOR_SECRET = "linkerd-trust-anchor"  # noqa: S105 (a Secret's name)
TRUST_ANCHOR_ISSUER = "linkerd-trust-anchor"
COMPONENT = "mesh"
HELM_TIMEOUT_SECONDS = 900


@dataclass(frozen=True, kw_only=True)
class ServiceMeshArgs:
    """Inputs of the mesh."""

    config: PlatformConfig
    provider: k8s.Provider
    cert_manager_ready: Sequence[pulumi.Resource] = ()
    """cert-manager's release (its CRDs and webhook): the issuer resources wait for it."""
    namespace: pulumi.Input[str] = NAMESPACE
    cni_namespace: pulumi.Input[str] = CNI_NAMESPACE


def _release(
    name: str,
    chart: versions.HelmChart,
    namespace: pulumi.Input[str],
    values: dict[str, object],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        name,
        name=chart.name,
        chart=chart.name,
        version=chart.version,
        repository_opts={"repo": chart.repo},
        namespace=namespace,
        values=values,
        skip_await=False,
        timeout=HELM_TIMEOUT_SECONDS,
        opts=opts,
    )


class ServiceMesh(pulumi.ComponentResource):
    """Linkerd with cert-manager-issued identity and the platform's authorization."""

    ready: list[pulumi.Resource]
    """The control plane: meshed workloads start after its injector serves."""
    policy_ready: list[pulumi.Resource]
    trust_anchor_pem: pulumi.Output[str] | None
    trust_anchor_expiry: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ServiceMeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:mesh:ServiceMesh", name, None, opts)
        config = args.config
        mesh = config.mesh
        self.ready, self.policy_ready = [], []
        self.trust_anchor_pem = self.trust_anchor_expiry = None
        if not mesh.enabled:
            self.register_outputs({})
            return
        prod = config.is_prod
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = standard_labels(name="linkerd-identity", component=COMPONENT)

        def after(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=list(deps))
            )

        # Replacing the anchor key breaks every proxy's trust: rotation is a documented step.
        key = tls.PrivateKey(
            f"{name}-trust-anchor-key",
            algorithm="ECDSA",
            ecdsa_curve="P256",
            opts=pulumi.ResourceOptions(parent=self, protect=prod),
        )
        anchor = tls.SelfSignedCert(
            f"{name}-trust-anchor",
            private_key_pem=key.private_key_pem,
            is_ca_certificate=True,
            subject={"common_name": "root.linkerd.cluster.local"},
            validity_period_hours=mesh.trust_anchor_days * 24,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.trust_anchor_pem = anchor.cert_pem
        self.trust_anchor_expiry = anchor.validity_end_time

        crds = _release(f"{name}-crds", versions.LINKERD_CRDS, args.namespace, crds_values(), child)
        self.policy_ready = [crds]
        anchor_secret = k8s.core.v1.Secret(
            f"{name}-trust-anchor-secret",
            metadata={"name": TRUST_ANCHOR_SECRET, "namespace": args.namespace, "labels": labels},
            type="kubernetes.io/tls",
            string_data={"tls.crt": anchor.cert_pem, "tls.key": key.private_key_pem},
            opts=child,
        )
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-trust-anchor-issuer",
            api_version="cert-manager.io/v1",
            kind="Issuer",
            metadata={
                "name": TRUST_ANCHOR_ISSUER,
                "namespace": args.namespace,
                "labels": labels,
                "annotations": {"pulumi.com/waitFor": "condition=Ready"},
            },
            spec={"ca": {"secretName": TRUST_ANCHOR_SECRET}},
            opts=after(anchor_secret, *args.cert_manager_ready),
        )
        trust_roots = k8s.core.v1.ConfigMap(
            f"{name}-trust-roots",
            metadata={"name": TRUST_ROOTS_CONFIGMAP, "namespace": args.namespace, "labels": labels},
            data={TRUST_ROOTS_KEY: anchor.cert_pem},
            opts=child,
        )
        identity_issuer = k8s.apiextensions.CustomResource(
            f"{name}-identity-issuer",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={
                "name": "linkerd-identity-issuer",
                "namespace": args.namespace,
                "labels": labels,
                "annotations": {"pulumi.com/waitFor": "condition=Ready"},
            },
            spec=identity_issuer_spec(
                hours=mesh.identity_issuer_hours,
                renew_before_hours=mesh.identity_issuer_renew_before_hours,
                issuer=TRUST_ANCHOR_ISSUER,
            ),
            opts=after(issuer, *args.cert_manager_ready),
        )

        cni = _release(
            f"{name}-cni", versions.LINKERD2_CNI, args.cni_namespace, cni_values(), child
        )
        control_plane = _release(
            f"{name}-control-plane",
            versions.LINKERD_CONTROL_PLANE,
            args.namespace,
            control_plane_values(prod=prod),
            after(crds, cni, trust_roots, identity_issuer),
        )
        self.ready = [control_plane]
        if mesh.viz:
            _release(f"{name}-viz", versions.LINKERD_VIZ, VIZ_NAMESPACE, {}, after(control_plane))

        for body in platform_authorizations():
            meta = body["metadata"]
            k8s.apiextensions.CustomResource(
                f"{name}-{meta['namespace']}-{body['kind'].lower()}-{meta['name']}",
                api_version=body["apiVersion"],
                kind=body["kind"],
                metadata={
                    **meta,
                    "labels": standard_labels(name=meta["name"], component=COMPONENT),
                },
                spec=body["spec"],
                opts=after(crds),
            )

        self.register_outputs(
            {
                "trust_anchor_pem": self.trust_anchor_pem,
                "trust_anchor_expiry": self.trust_anchor_expiry,
            }
        )

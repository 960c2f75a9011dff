"""ServiceMesh: Linkerd with its identity from cert-manager, and who may call whom.

Creates, when `config.mesh.enabled`:

* per id in `mesh.trust_anchors`, a trust anchor: an ECDSA P-256 key and a self-signed
  CA certificate (`trust_anchor_days`) made by pulumi-tls; the bundle of all anchors goes
  into the `linkerd-identity-trust-roots` ConfigMap the chart reads with
  `identity.externalCA`;
* for the signing anchor only, a `kubernetes.io/tls` Secret and a cert-manager CA
  `Issuer` in Linkerd's namespace, and the identity issuer `Certificate`
  (`linkerd-identity-issuer`, ECDSA P-256, a CA, renewed by cert-manager);
* the serving certificates of Linkerd's three admission webhooks, issued by the
  platform's CA `ClusterIssuer` and renewed by cert-manager, which also injects their
  CA into the webhook configurations (the chart would otherwise generate new ones at
  every templating);
* the releases `linkerd-crds`, `linkerd2-cni` (k3s paths, so no privileged proxy-init
  container in every pod) and `linkerd-control-plane` (issuer scheme
  `kubernetes.io/tls`, HA on prod), optionally `linkerd-viz`; charts pinned in
  `components.versions`, values from `components.mesh.values`;
* the authorization of `components.mesh.policy`: only the LLM gateway may call the model
  servers, only the ingress may call the LLM gateway.

Why the trust anchor comes from pulumi-tls and not from a cert-manager self-signed
issuer: the chart wants the anchor's PEM as a value and the trust roots ConfigMap must
exist before the control plane starts, so the anchor has to be known to the program,
not written asynchronously into a Secret by cert-manager (reading that back fails on the
first preview). Its expiry becomes a stack output alerts watch, and the anchor survives
a rebuilt cluster. cert-manager does what it is good at: renewing the short-lived
identity issuer every couple of days. The cost: the anchor keys live in the Pulumi
state as secrets (protected against deletion on prod), and rotating an anchor is a
deliberate three-step change of config (docs/mesh.md), never an automatic renewal, since
a replaced anchor that proxies do not yet trust takes the whole mesh down.

Ordering, so nothing races a CRD or a webhook: every custom resource depends on the
release installing its CRD (`cert_manager_ready` for cert-manager's, `linkerd-crds` for
Linkerd's); Issuer and Certificate carry `pulumi.com/waitFor: condition=Ready`, so the
control plane, which depends on the Certificate, starts with its issuer Secret in
place; releases wait for their workloads (`skip_await=False`). Linkerd's policy CRs also
wait for the control plane: its policy validator webhook fails closed on prod.

Exposes `ready` (the control-plane release: meshed workloads start after the injector
serves), `policy_ready` (policy CRDs and validator: anything creating policy.linkerd.io
objects depends on it), `trust_anchor_pem` (the bundle of trusted anchors) and
`trust_anchor_expiry` (RFC 3339 end of the signing anchor). Expects the cluster's
explicit `k8s.Provider`; pulumi-tls needs no provider configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components import versions
from components.config import PlatformConfig
from components.helm import pinned_release
from components.labels import standard_labels
from components.mesh.identity import (
    ANCHOR_MAX_PATH_LENGTH,
    ANCHOR_USES,
    IDENTITY_ISSUER_NAME,
    READY_ANNOTATION,
    TRUST_ROOTS_CONFIGMAP,
    TRUST_ROOTS_KEY,
    WEBHOOK_SERVICES,
    anchor_issuer_spec,
    anchor_object_name,
    anchor_subject,
    identity_issuer_spec,
    webhook_certificate_spec,
)
from components.mesh.policy import platform_policy
from components.mesh.values import cni_values, control_plane_values, crds_values, viz_values

NAMESPACE = "linkerd"
CNI_NAMESPACE = "linkerd-cni"
VIZ_NAMESPACE = "linkerd-viz"
COMPONENT = "mesh"
HELM_TIMEOUT_SECONDS = 900


@dataclass(frozen=True, kw_only=True)
class ServiceMeshArgs:
    """Inputs of the mesh."""

    config: PlatformConfig
    """The stack config: `mesh` (on/off, anchors, durations, viz); `environment` sizes it."""
    provider: k8s.Provider
    """The cluster's explicit provider."""
    cert_manager_ready: Sequence[pulumi.Resource] = ()
    """`InternalPki.ready` (cert-manager's release and CA issuer): the anchor Issuer and
    the identity issuer Certificate wait for it. Empty only in tests of this area alone."""
    namespace: pulumi.Input[str] = NAMESPACE
    """Linkerd's namespace; pass the created Namespace's name so the mesh waits for it."""
    cni_namespace: pulumi.Input[str] = CNI_NAMESPACE
    """linkerd2-cni's namespace (privileged: the DaemonSet writes the node's CNI config)."""
    viz_namespace: pulumi.Input[str] = VIZ_NAMESPACE
    """linkerd-viz's namespace, used only with `mesh.viz`."""
    namespaces: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The created namespaces by name (`ClusterBase.namespaces`): each policy object
    takes its namespace from here, so it waits for it; names missing here are used as is."""


class ServiceMesh(pulumi.ComponentResource):
    """Linkerd with cert-manager-issued identity and the platform's authorization."""

    ready: list[pulumi.Resource]
    policy_ready: list[pulumi.Resource]
    policies: list[pulumi.Resource]
    trust_anchor_pem: pulumi.Output[str] | None
    trust_anchor_expiry: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ServiceMeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:mesh:ServiceMesh", name, None, opts)
        config = args.config
        mesh = config.mesh
        self.ready, self.policy_ready, self.policies = [], [], []
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

        # 1. Trust anchors. Replacing a key breaks every proxy's trust: protected on prod,
        # rotated only by adding a new id (docs/mesh.md).
        keys: dict[str, tls.PrivateKey] = {}
        certs: dict[str, tls.SelfSignedCert] = {}
        for anchor_id in mesh.trust_anchors:
            keys[anchor_id] = tls.PrivateKey(
                f"{name}-trust-anchor-{anchor_id}-key",
                algorithm="ECDSA",
                ecdsa_curve="P256",
                opts=pulumi.ResourceOptions(parent=self, protect=prod),
            )
            certs[anchor_id] = tls.SelfSignedCert(
                f"{name}-trust-anchor-{anchor_id}",
                private_key_pem=keys[anchor_id].private_key_pem,
                is_ca_certificate=True,
                set_subject_key_id=True,
                subject=tls.SelfSignedCertSubjectArgs(**anchor_subject(anchor_id)),
                # root -> identity issuer -> workload: one CA below the anchor, no more.
                max_path_length=ANCHOR_MAX_PATH_LENGTH,
                validity_period_hours=mesh.trust_anchor_days * 24,
                allowed_uses=list(ANCHOR_USES),
                opts=pulumi.ResourceOptions(parent=self),
            )
        signing = mesh.signing_anchor
        self.trust_anchor_pem = pulumi.Output.concat(
            *(certs[anchor_id].cert_pem for anchor_id in mesh.trust_anchors)
        )
        self.trust_anchor_expiry = certs[signing].validity_end_time

        trust_roots = k8s.core.v1.ConfigMap(
            f"{name}-trust-roots",
            metadata={"name": TRUST_ROOTS_CONFIGMAP, "namespace": args.namespace, "labels": labels},
            data={TRUST_ROOTS_KEY: self.trust_anchor_pem},
            opts=child,
        )

        # 2. The signing anchor behind a cert-manager Issuer, and the identity issuer.
        anchor_secret = k8s.core.v1.Secret(
            f"{name}-trust-anchor-{signing}-secret",
            metadata={
                "name": anchor_object_name(signing),
                "namespace": args.namespace,
                "labels": labels,
            },
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": certs[signing].cert_pem,
                "tls.key": keys[signing].private_key_pem,
            },
            opts=child,
        )
        anchor_issuer = k8s.apiextensions.CustomResource(
            f"{name}-trust-anchor-{signing}-issuer",
            api_version="cert-manager.io/v1",
            kind="Issuer",
            metadata={
                "name": anchor_object_name(signing),
                "namespace": args.namespace,
                "labels": labels,
                "annotations": dict(READY_ANNOTATION),
            },
            spec=anchor_issuer_spec(signing),
            opts=after(anchor_secret, *args.cert_manager_ready),
        )
        identity_issuer = k8s.apiextensions.CustomResource(
            f"{name}-identity-issuer",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={
                "name": IDENTITY_ISSUER_NAME,
                "namespace": args.namespace,
                "labels": labels,
                "annotations": dict(READY_ANNOTATION),
            },
            spec=identity_issuer_spec(
                signing_anchor=signing,
                hours=mesh.identity_issuer_hours,
                renew_before_hours=mesh.identity_issuer_renew_before_hours,
            ),
            opts=after(anchor_issuer, *args.cert_manager_ready),
        )

        # 3. The admission webhooks' serving certificates, from the platform's CA.
        webhook_certs = [
            k8s.apiextensions.CustomResource(
                f"{name}-{service}-tls",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={
                    "name": service,
                    "namespace": args.namespace,
                    "labels": standard_labels(name=service, component=COMPONENT),
                    "annotations": dict(READY_ANNOTATION),
                },
                spec=webhook_certificate_spec(
                    service=service, namespace=NAMESPACE, issuer=config.pki.ca_issuer_name
                ),
                opts=after(*args.cert_manager_ready),
            )
            for service in WEBHOOK_SERVICES
        ]

        # 4. The releases, in the order Linkerd needs them.
        crds = pinned_release(
            f"{name}-crds",
            versions.LINKERD_CRDS,
            namespace=args.namespace,
            overlays=args.config.helm_values,
            values=crds_values(),
            opts=child,
            timeout_seconds=HELM_TIMEOUT_SECONDS,
        )
        cni = pinned_release(
            f"{name}-cni",
            versions.LINKERD2_CNI,
            namespace=args.cni_namespace,
            overlays=args.config.helm_values,
            values=cni_values(),
            opts=child,
            timeout_seconds=HELM_TIMEOUT_SECONDS,
        )
        control_plane = pinned_release(
            f"{name}-control-plane",
            versions.LINKERD_CONTROL_PLANE,
            namespace=args.namespace,
            overlays=args.config.helm_values,
            values=control_plane_values(prod=prod, trust_anchors_pem=self.trust_anchor_pem),
            opts=after(crds, cni, trust_roots, identity_issuer, *webhook_certs),
            timeout_seconds=HELM_TIMEOUT_SECONDS,
        )
        self.ready = [control_plane]
        self.policy_ready = [crds, control_plane]
        if mesh.viz:
            pinned_release(
                f"{name}-viz",
                versions.LINKERD_VIZ,
                namespace=args.viz_namespace,
                overlays=args.config.helm_values,
                values=viz_values(prod=prod),
                opts=after(control_plane),
                timeout_seconds=HELM_TIMEOUT_SECONDS,
            )

        # 5. Authorization.
        for body in platform_policy(scrape_cidrs=mesh.scrape_cidrs):
            meta = body["metadata"]
            namespace = args.namespaces.get(meta["namespace"], meta["namespace"])
            self.policies.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-{meta['namespace']}-{body['kind'].lower()}-{meta['name']}",
                    api_version=body["apiVersion"],
                    kind=body["kind"],
                    metadata={
                        "name": meta["name"],
                        "namespace": namespace,
                        "labels": standard_labels(name=meta["name"], component=COMPONENT),
                    },
                    spec=body["spec"],
                    opts=after(*self.policy_ready),
                )
            )

        self.register_outputs(
            {
                "trust_anchor_pem": self.trust_anchor_pem,
                "trust_anchor_expiry": self.trust_anchor_expiry,
            }
        )

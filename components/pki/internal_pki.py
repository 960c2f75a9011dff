"""InternalPki: cert-manager with the platform's internal CA, and trust-manager to spread it.

Creates, in cert-manager's namespace:

* the cert-manager Helm release (pinned; CRDs from the chart; HA in prod, see
  `components.pki.values`);
* the root CA: an ECDSA P-256 key and a self-signed CA certificate made by pulumi-tls,
  loaded into a `kubernetes.io/tls` Secret;
* the CA `ClusterIssuer` named `config.pki.ca_issuer_name`, signing with that Secret;
* the trust-manager release (pinned) and a `Bundle` that writes the root certificate
  into the ConfigMap `trust_bundle_configmap` (key `ca.crt`) of every namespace labelled
  `config.pki.trust_bundle_label: enabled`.

Why the root comes from pulumi-tls and not from a cert-manager self-signed issuer:
the root's public certificate and its expiry are then known at preview time, without
reading back a Secret that cert-manager writes asynchronously (a `Secret.get` of it
fails on the first preview of a fresh stack). They become stack outputs that clients,
the edge gateway (which verifies Traefik against this root) and other projects consume,
and the root survives a rebuilt cluster, so nothing that trusts it has to change.
The cost: the root key lives in the Pulumi state, encrypted as a secret like the
stack's other secrets (protected against deletion in prod). Re-signing before expiry
keeps the key, so certificates already issued stay valid; see docs/services.md.

Readiness, so nothing races a webhook: the cert-manager release waits for its
Deployments and for the chart's post-install `startupapicheck` Job, which only succeeds
once the webhook serves API requests; the CA ClusterIssuer carries
`pulumi.com/waitFor: condition=Ready`, so it only counts as created once cert-manager
has loaded the CA. `ready` lists both: anything that issues certificates depends on it.

Exposes `issuer_name`, `ready`, `root_ca_pem`, `root_ca_expiry`, `cert_manager`,
`trust_manager` and `trust_bundle_configmap`. Expects the cluster's explicit
`k8s.Provider`; pulumi-tls resources use the tls provider (no cloud credentials).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components import versions
from components.config import PlatformConfig
from components.helm import pinned_release
from components.labels import standard_labels

from .values import (
    CERT_MANAGER_RELEASE,
    ISSUER_READY_ANNOTATION,
    ROOT_CA_SECRET,
    TRUST_BUNDLE_KEY,
    TRUST_BUNDLE_NAME,
    TRUST_MANAGER_RELEASE,
    ca_issuer_spec,
    cert_manager_values,
    trust_bundle_spec,
    trust_manager_values,
)

CERT_MANAGER_NAMESPACE = "cert-manager"
ROOT_CA_USES = ("cert_signing", "crl_signing", "digital_signature")
COMPONENT = "pki"


@dataclass(frozen=True, kw_only=True)
class InternalPkiArgs:
    """Inputs of the internal PKI."""

    config: PlatformConfig
    """The stack config: `pki` names and durations, `environment` sizes the releases."""
    provider: k8s.Provider
    """The cluster's explicit provider."""
    namespace: pulumi.Input[str] = CERT_MANAGER_NAMESPACE
    """cert-manager's namespace; pass the created Namespace's name so the PKI waits for it."""


class InternalPki(pulumi.ComponentResource):
    """cert-manager, the internal root CA and its ClusterIssuer, and the trust bundle."""

    issuer_name: str
    ready: list[pulumi.Resource]
    root_ca_pem: pulumi.Output[str]
    root_ca_expiry: pulumi.Output[str]
    cert_manager: k8s.helm.v3.Release
    trust_manager: k8s.helm.v3.Release
    trust_bundle_configmap: str

    def __init__(
        self, name: str, args: InternalPkiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:pki:InternalPki", name, None, opts)
        config = args.config
        pki = config.pki
        prod = config.is_prod
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = standard_labels(name="internal-ca", component=COMPONENT)

        self.cert_manager = pinned_release(
            f"{name}-cert-manager",
            versions.CERT_MANAGER,
            release_name=CERT_MANAGER_RELEASE,
            namespace=args.namespace,
            overlays=args.config.helm_values,
            values=cert_manager_values(prod=prod),
            opts=child,
        )

        # Replacing the key would invalidate every certificate the CA ever issued.
        key = tls.PrivateKey(
            f"{name}-root-ca-key",
            algorithm="ECDSA",
            ecdsa_curve="P256",
            opts=pulumi.ResourceOptions(parent=self, protect=prod),
        )
        root = tls.SelfSignedCert(
            f"{name}-root-ca",
            private_key_pem=key.private_key_pem,
            is_ca_certificate=True,
            set_subject_key_id=True,
            subject={"common_name": pki.root_ca_common_name, "organization": "llm-platform"},
            validity_period_hours=pki.root_ca_days * 24,
            early_renewal_hours=pki.root_ca_renew_before_days * 24,
            allowed_uses=list(ROOT_CA_USES),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.root_ca_pem = root.cert_pem
        self.root_ca_expiry = root.validity_end_time

        secret = k8s.core.v1.Secret(
            f"{name}-root-ca-secret",
            metadata={"name": ROOT_CA_SECRET, "namespace": args.namespace, "labels": labels},
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": root.cert_pem,
                "tls.key": key.private_key_pem,
                "ca.crt": root.cert_pem,
            },
            opts=child,
        )

        self.issuer_name = pki.ca_issuer_name
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-ca-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={
                "name": pki.ca_issuer_name,
                "labels": labels,
                "annotations": dict(ISSUER_READY_ANNOTATION),
            },
            spec=ca_issuer_spec(secret_name=ROOT_CA_SECRET),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.cert_manager, secret])
            ),
        )
        self.ready = [self.cert_manager, issuer]

        # trust-manager's own webhook certificate is issued by cert-manager, so its
        # release needs cert-manager's CRDs and webhook first.
        self.trust_manager = pinned_release(
            f"{name}-trust-manager",
            versions.TRUST_MANAGER,
            release_name=TRUST_MANAGER_RELEASE,
            namespace=args.namespace,
            overlays=args.config.helm_values,
            values=trust_manager_values(prod=prod, trust_namespace=CERT_MANAGER_NAMESPACE),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.cert_manager])
            ),
        )
        self.trust_bundle_configmap = TRUST_BUNDLE_NAME
        k8s.apiextensions.CustomResource(
            f"{name}-trust-bundle",
            api_version="trust.cert-manager.io/v1alpha1",
            kind="Bundle",
            metadata={"name": TRUST_BUNDLE_NAME, "labels": labels},
            spec=trust_bundle_spec(
                secret_name=ROOT_CA_SECRET, namespace_label=pki.trust_bundle_label
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.trust_manager, secret])
            ),
        )

        self.register_outputs(
            {
                "issuer_name": self.issuer_name,
                "root_ca_pem": self.root_ca_pem,
                "root_ca_expiry": self.root_ca_expiry,
                "trust_bundle_configmap": self.trust_bundle_configmap,
                "trust_bundle_key": TRUST_BUNDLE_KEY,
            }
        )

"""Linkerd's identity chain as data: trust anchors, their issuers, the identity issuer.

The chain is trust anchor (pulumi-tls, ECDSA P-256, long-lived) → a cert-manager CA
`Issuer` in Linkerd's namespace backed by the signing anchor's Secret → the identity
issuer `Certificate` (`linkerd-identity-issuer`, ECDSA P-256, a CA, short-lived and
renewed by cert-manager) → the workload certificates Linkerd's identity controller
issues for 24 h. Pure functions; names and specs only.
"""

from __future__ import annotations

from typing import Any

TRUST_DOMAIN = "cluster.local"
IDENTITY_ISSUER_NAME = "linkerd-identity-issuer"
"""Certificate and Secret name: the chart's identity controller reads this Secret."""
TRUST_ROOTS_CONFIGMAP = "linkerd-identity-trust-roots"
"""ConfigMap the chart reads with `identity.externalCA` (key `ca-bundle.crt`)."""
TRUST_ROOTS_KEY = "ca-bundle.crt"
ANCHOR_MAX_PATH_LENGTH = 1
"""The anchor signs the identity issuer (a CA), which signs only workload certificates."""
ANCHOR_USES = ("cert_signing", "crl_signing")
"""pulumi-tls key usages of a trust anchor: it signs the identity issuer, nothing else."""
READY_ANNOTATION = {"pulumi.com/waitFor": "condition=Ready"}
"""pulumi-kubernetes waits until cert-manager reports the object Ready."""


def anchor_object_name(anchor_id: str) -> str:
    """Name of the Secret and the cert-manager Issuer of one trust anchor."""
    return f"linkerd-trust-anchor-{anchor_id}"


def anchor_subject(anchor_id: str) -> dict[str, str]:
    """Subject of a trust anchor; the id keeps two anchors apart during a rotation."""
    return {"common_name": f"{anchor_id}.root.linkerd.{TRUST_DOMAIN}", "organization": "linkerd"}


def anchor_issuer_spec(anchor_id: str) -> dict[str, Any]:
    """Spec of the cert-manager CA `Issuer` that signs with one trust anchor."""
    return {"ca": {"secretName": anchor_object_name(anchor_id)}}


def identity_issuer_spec(
    *, signing_anchor: str, hours: int, renew_before_hours: int
) -> dict[str, Any]:
    """The identity issuer `Certificate`, following Linkerd's cert-manager recipe.

    Pointing `issuerRef` at another anchor's Issuer makes cert-manager re-issue at once
    (the Secret's issuer annotations no longer match), which is step 2 of a rotation.
    """
    identity = f"identity.linkerd.{TRUST_DOMAIN}"
    return {
        "secretName": IDENTITY_ISSUER_NAME,
        "duration": f"{hours}h0m0s",
        "renewBefore": f"{renew_before_hours}h0m0s",
        "issuerRef": {
            "name": anchor_object_name(signing_anchor),
            "kind": "Issuer",
            "group": "cert-manager.io",
        },
        "commonName": identity,
        "dnsNames": [identity],
        "isCA": True,
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": ["cert sign", "crl sign", "server auth", "client auth"],
    }


WEBHOOK_SERVICES = ("linkerd-proxy-injector", "linkerd-sp-validator", "linkerd-policy-validator")
"""Linkerd's admission webhooks; each serves TLS from the Secret `<service>-k8s-tls`."""

WEBHOOK_CERT_HOURS = 24 * 90
WEBHOOK_CERT_RENEW_BEFORE_HOURS = 24 * 30


def webhook_secret_name(service: str) -> str:
    """The Secret the chart mounts into a webhook with `<webhook>.externalSecret`."""
    return f"{service}-k8s-tls"


def webhook_certificate_spec(*, service: str, namespace: str, issuer: str) -> dict[str, Any]:
    """A webhook's serving certificate, issued by the platform's CA `ClusterIssuer`.

    Without it the chart makes a self-signed certificate with `genSelfSignedCert` at
    every template run: every `pulumi up` would replace the key and the caBundle, and the
    render would never be the same twice. cert-manager's CA injector copies the issuing
    CA into the webhook configurations (`<webhook>.injectCaFrom`).
    """
    host = f"{service}.{namespace}.svc"
    return {
        "secretName": webhook_secret_name(service),
        "duration": f"{WEBHOOK_CERT_HOURS}h0m0s",
        "renewBefore": f"{WEBHOOK_CERT_RENEW_BEFORE_HOURS}h0m0s",
        "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        "commonName": host,
        "dnsNames": [host],
        "isCA": False,
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": ["server auth"],
    }

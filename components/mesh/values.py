"""Helm values of the Linkerd charts, as pure functions of config.

Every key used here is read by the pinned chart's templates: the render templates each
release with the real Helm engine and tests/artifacts/test_chart_objects.py checks that
changing any key changes what the chart renders.

Long streams (a generation that streams for many minutes) and the proxy, from the
proxy's source (linkerd2-proxy `linkerd/app/src/env.rs`) and the chart's values:

* The proxy has no request, response or idle timeout on HTTP traffic by default; the
  platform sets none (no `timeouts` on routes, no `timeout.linkerd.io/*` annotations).
* Protocol detection waits up to 10 s for the client's first bytes, then treats the
  connection as opaque TCP (no per-route policy). HTTP clients speak first, so detection
  succeeds at once; on the inbound side the platform's `Server`s declare `HTTP/1`, which
  skips detection entirely (`components.mesh.policy`). The chart's
  `disable*ProtocolDetectTimeout` are left off on purpose: they make a silent
  server-speaks-first connection wait for ever instead of falling back after 10 s.
* Between proxies, HTTP/1 is carried over HTTP/2 with keep-alive PINGs every 10 s (3 s
  to answer): a long silent prefill before the first token keeps its connection.
* Shutdown: with native sidecars (pinned on below) the kubelet stops the proxy only
  after the application container has exited, so a draining generation is bounded by
  the workload's `terminationGracePeriodSeconds`, not by the proxy's 120 s grace period.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.mesh.identity import TRUST_DOMAIN

HEARTBEAT_SCHEDULE = "17 4 * * *"
"""When the heartbeat CronJob runs (daily, UTC). The chart's default derives it from the
time of templating, so every `pulumi up` would change it and no two renders would agree."""

K3S_CNI_NET_DIR = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
K3S_CNI_BIN_DIR = "/var/lib/rancher/k3s/data/cni"
"""k3s's CNI config and (static, since k3s-io/k3s#10868) binary directories."""

WEBHOOK_EXEMPT_NAMESPACES = ("kube-system", "cert-manager")
"""Namespaces no Linkerd admission webhook sees: in prod the webhooks fail closed, and
kube-system (CoreDNS, ServiceLB) and cert-manager (which issues the mesh's identity)
must start even while Linkerd's control plane is down."""

HA_REPLICAS = 3


def _resources(
    cpu_request: str, memory_request: str, memory_limit: str
) -> dict[str, dict[str, str]]:
    """Linkerd's own resources struct (not a Kubernetes ResourceRequirements)."""
    return {
        "cpu": {"request": cpu_request},
        "memory": {"request": memory_request, "limit": memory_limit},
    }


def webhook_namespace_selector() -> dict[str, Any]:
    """The namespaceSelector of the injector and both validators."""
    return {
        "matchExpressions": [
            {
                "key": "config.linkerd.io/admission-webhooks",
                "operator": "NotIn",
                "values": ["disabled"],
            },
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": list(WEBHOOK_EXEMPT_NAMESPACES),
            },
        ]
    }


def _webhook(selector: dict[str, Any], *, namespace: str, service: str) -> dict[str, Any]:
    """A webhook serving the Secret cert-manager issues (`webhook_certificate_spec`), its
    CA injected by cert-manager from that Certificate (`<namespace>/<service>`)."""
    return {
        "namespaceSelector": selector,
        "externalSecret": True,
        "injectCaFrom": f"{namespace}/{service}",
    }


def control_plane_values(
    *, prod: bool, trust_anchors_pem: pulumi.Input[str], namespace: str = "linkerd"
) -> dict[str, Any]:
    """linkerd-control-plane values: cert-manager identity, CNI, webhooks, HA on prod.

    The three admission webhooks serve certificates cert-manager issues and renews (see
    `components.mesh.identity.webhook_certificate_spec`) instead of ones the chart
    generates at each templating.

    `trust_anchors_pem` is the bundle of every trusted anchor. With `identity.externalCA`
    the chart does not create the trust roots ConfigMap (this program does), but it
    still hashes this value into the control-plane pods' `linkerd.io/trust-root-sha256`
    annotation, so a changed bundle rolls the control plane.
    """
    selector = webhook_namespace_selector()
    values: dict[str, Any] = {
        "identityTrustDomain": TRUST_DOMAIN,
        "identityTrustAnchorsPEM": trust_anchors_pem,
        "identity": {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}},
        "cniEnabled": True,
        "proxyInjector": _webhook(selector, namespace=namespace, service="linkerd-proxy-injector"),
        "profileValidator": _webhook(selector, namespace=namespace, service="linkerd-sp-validator"),
        "policyValidator": _webhook(
            selector, namespace=namespace, service="linkerd-policy-validator"
        ),
        "heartbeatSchedule": HEARTBEAT_SCHEDULE,
        "proxy": {"nativeSidecar": True},
    }
    # Requests and memory limits from the chart's values-ha.yaml on both stacks: without
    # them the control plane asks the scheduler for nothing and may use any memory.
    controller = _resources("100m", "50Mi", "250Mi")
    values |= {
        "destinationResources": controller,
        "identityResources": _resources("100m", "10Mi", "250Mi"),
        "heartbeatResources": controller,
        "proxyInjectorResources": controller,
        "spValidatorResources": controller,
        "policyController": {"resources": controller},
    }
    values["proxy"] = {**values["proxy"], "resources": _resources("100m", "20Mi", "250Mi")}
    if not prod:
        values["controllerReplicas"] = 1
        return values
    # The rest of values-ha.yaml, spelled out so the render shows it and a bump of the
    # chart shows in review (less its `highAvailability` flag and `controllerResources`
    # anchor, which no template reads).
    values |= {
        "controllerReplicas": HA_REPLICAS,
        "enablePodDisruptionBudget": True,
        "controller": {"podDisruptionBudget": {"maxUnavailable": 1}},
        "deploymentStrategy": {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
        "enablePodAntiAffinity": True,
        "webhookFailurePolicy": "Fail",
    }
    return values


def crds_values() -> dict[str, Any]:
    """linkerd-crds values.

    The Gateway API CRDs stay out: Linkerd's policy controller runs without them, the
    platform's routes are `policy.linkerd.io` HTTPRoutes, and CRDs of a shared API group
    should not be owned by one add-on's release.
    """
    return {"installGatewayAPI": False}


def cni_values() -> dict[str, Any]:
    """linkerd2-cni values for k3s's CNI paths (no privileged proxy-init per pod)."""
    return {"destCNINetDir": K3S_CNI_NET_DIR, "destCNIBinDir": K3S_CNI_BIN_DIR}


def viz_values(*, prod: bool) -> dict[str, Any]:
    """linkerd-viz values: the chart's values-ha.yaml on prod."""
    if not prod:
        return {}
    ha = _resources("100m", "50Mi", "250Mi")
    return {
        "enablePodAntiAffinity": True,
        "enablePodDisruptionBudget": True,
        "resources": ha,
        "tap": {"replicas": HA_REPLICAS, "resources": ha},
        "dashboard": {"resources": ha},
        "prometheus": {"resources": _resources("300m", "300Mi", "8192Mi")},
    }

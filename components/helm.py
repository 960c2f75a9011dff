"""The one way the platform installs a Helm chart: a pinned `helm.v3.Release` that waits.

Every chart comes from `components.versions` (name, repository, exact version). The
release counts as created only once its workloads are ready and its hook Jobs have
finished, so whatever depends on it (custom resources of the CRDs it installs, Services
it fronts) is created after a working install, and a failed install fails `pulumi up`
within `timeout_seconds` instead of leaving a half-ready area behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.versions import HelmChart

DEFAULT_TIMEOUT_SECONDS = 600

RELEASE_NAMES = frozenset(
    {
        "arc-controller",
        "barman-cloud",
        "cert-manager",
        "cnpg",
        "dcgm-exporter",
        "keda",
        "linkerd-control-plane",
        "linkerd-crds",
        "linkerd-viz",
        "linkerd2-cni",
        "llm-platform-amd64",
        "llm-platform-arm64",
        "llm-platform-gpu",
        "monitoring",
        "nvidia-device-plugin",
        "qdrant",
        "traefik",
        "trust-manager",
        "vpa",
    }
)
"""Every Helm release the platform can install, by release name: what `helm_values` may
overlay (tests/unit/test_helm_overlay.py holds it to the stacks' releases)."""


def merged(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` merged in, maps key by key, anything else replaced (pure)."""
    out = dict(base)
    for key, value in overlay.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = merged(current, value)
        else:
            out[key] = value
    return out


def pinned_release(
    resource_name: str,
    chart: HelmChart,
    *,
    namespace: pulumi.Input[str],
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    release_name: str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    overlays: Mapping[str, Mapping[str, Any]] | None = None,
) -> k8s.helm.v3.Release:
    """Install `chart` at its pinned version as `release_name` (the chart's name by default).

    `overlays` is the stack's `helm_values`: the one for this release is merged last,
    over the values the program sets.
    """
    name = release_name or chart.name
    overlay = (overlays or {}).get(name)
    if overlay:
        values = pulumi.Output.from_input(values).apply(lambda base: merged(base, overlay))
    return k8s.helm.v3.Release(
        resource_name,
        name=name,
        chart=chart.reference,
        version=chart.version,
        repository_opts=None if chart.oci else {"repo": chart.repo},
        namespace=namespace,
        values=values,
        skip_await=False,
        wait_for_jobs=True,
        timeout=timeout_seconds,
        opts=opts,
    )

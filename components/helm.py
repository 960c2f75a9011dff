"""The one way the platform installs a Helm chart: a pinned `helm.v3.Release` that waits.

Every chart comes from `components.versions` (name, repository, exact version). The
release counts as created only once its workloads are ready and its hook Jobs have
finished, so whatever depends on it (custom resources of the CRDs it installs, Services
it fronts) is created after a working install, and a failed install fails `pulumi up`
within `timeout_seconds` instead of leaving a half-ready area behind.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.versions import HelmChart

DEFAULT_TIMEOUT_SECONDS = 600


def pinned_release(
    resource_name: str,
    chart: HelmChart,
    *,
    namespace: pulumi.Input[str],
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    release_name: str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
) -> k8s.helm.v3.Release:
    """Install `chart` at its pinned version as `release_name` (the chart's name by default)."""
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name or chart.name,
        chart=chart.name,
        version=chart.version,
        repository_opts={"repo": chart.repo},
        namespace=namespace,
        values=values,
        skip_await=False,
        wait_for_jobs=True,
        timeout=timeout_seconds,
        opts=opts,
    )

"""Autoscalers: the controllers that scale workloads (KEDA) and advise on their requests (VPA).

Creates, each only when config asks for it (otherwise nothing):

* the KEDA release (pinned chart keda, values in `values.keda_values`) in the `keda`
  namespace, when some model has `autoscaling`: its CRDs, operator, external-metrics
  API server (`v1beta1.external.metrics.k8s.io`) and admission webhooks. The inference
  area's ScaledObjects wait for it (`keda_ready`);
* the Vertical Pod Autoscaler release (pinned chart vertical-pod-autoscaler, the
  recommender only) in the `vpa` namespace, when `vpa.enabled`: its CRDs from the chart's
  `crds/` folder. The VerticalPodAutoscalers of `recommendations.ResourceRecommendations`
  and those the observability charts make wait for it (`vpa_ready`).

Expects the cluster's explicit `k8s.Provider`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.config import PlatformConfig
from components.helm import pinned_release

from .values import KEDA_RELEASE, VPA_RELEASE, keda_values, vpa_values


@dataclass(frozen=True, kw_only=True)
class AutoscalersArgs:
    """Inputs of the autoscaling controllers."""

    config: PlatformConfig
    """The stack config: which models autoscale, `vpa.enabled`, Helm overlays."""
    provider: k8s.Provider
    """The cluster's explicit provider."""
    scaled_namespace: str
    """The namespace whose workloads KEDA scales (the model servers')."""
    keda_namespace: pulumi.Input[str] = "keda"
    """Pass the created Namespace's name so the release waits for it."""
    vpa_namespace: pulumi.Input[str] = "vpa"


class Autoscalers(pulumi.ComponentResource):
    """KEDA and the VPA recommender, each when the config uses it."""

    keda_ready: list[pulumi.Resource]
    """The KEDA release, or nothing when no model autoscales."""
    vpa_ready: list[pulumi.Resource]
    """The VPA release, or nothing when `vpa.enabled` is off."""

    def __init__(
        self, name: str, args: AutoscalersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:autoscaling:Autoscalers", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.keda_ready = []
        self.vpa_ready = []
        if config.autoscaled_models:
            self.keda_ready.append(
                pinned_release(
                    f"{name}-keda",
                    versions.KEDA,
                    release_name=KEDA_RELEASE,
                    namespace=args.keda_namespace,
                    overlays=config.helm_values,
                    values=keda_values(watch_namespace=args.scaled_namespace),
                    opts=child,
                )
            )
        if config.vpa.enabled:
            self.vpa_ready.append(
                pinned_release(
                    f"{name}-vpa",
                    versions.VERTICAL_POD_AUTOSCALER,
                    release_name=VPA_RELEASE,
                    namespace=args.vpa_namespace,
                    overlays=config.helm_values,
                    values=vpa_values(),
                    opts=child,
                )
            )
        self.register_outputs({})

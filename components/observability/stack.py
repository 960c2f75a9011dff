"""Observability: Prometheus, Alertmanager and Grafana, GPU metrics, dashboards and alerts.

Creates, only when `observability.enabled` (otherwise nothing), in the observability
namespace:

* Grafana's admin credentials: a generated `RandomPassword` in the Secret
  `grafana-admin` (keys `admin-user`, `admin-password`), read by Grafana through
  `grafana.admin.existingSecret`, so the password never appears in Helm values;
* the kube-prometheus-stack release (pinned; values in `values`): Prometheus with the
  configured retention on a PVC of `storage_gib`, Alertmanager, Grafana with the
  dashboards sidecar; dev small, prod with persistence and larger requests;
* Grafana published at `grafana.<domain>` through the ingress helper (internal-CA cert);
* the DCGM exporter release on GPU nodes, only when the config lists GPU nodes;
* a ServiceMonitor/PodMonitor per platform part (`monitors`), the dashboards as
  ConfigMaps labelled for the sidecar (`dashboards`), one `PrometheusRule` (`rules`).

Custom resources depend on the release (it installs the Prometheus Operator CRDs); the
DCGM exporter also on `gpu_ready` (the `nvidia` RuntimeClass). Exposes `grafana_url`
(None when disabled) and `release`. Expects the cluster's explicit `k8s.Provider`; the
ingress handle carries the same provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import versions
from components.config import PlatformConfig
from components.helm import pinned_release
from components.ingress.publish import IngressHandle, PublishArgs, PublishedService
from components.labels import standard_labels

from .dashboards import all_dashboards, dashboard_json, scaled_servers
from .monitors import platform_monitors
from .rules import rule_groups
from .values import (
    ADMIN_PASSWORD_KEY,
    ADMIN_USER_KEY,
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    GRAFANA_SERVICE,
    GRAFANA_SERVICE_PORT,
    RELEASE,
    StackSettings,
    dcgm_exporter_values,
    kube_prometheus_stack_values,
)

NAMESPACE = "observability"
COMPONENT = "observability"
ADMIN_SECRET = "grafana-admin"  # noqa: S105 (a Secret's name)
ADMIN_USER = "admin"
HOST_PREFIX = "grafana"
HELM_TIMEOUT_SECONDS = 900
MONITORING_API = "monitoring.coreos.com/v1"


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    """Inputs of the observability stack."""

    config: PlatformConfig
    """The stack config: `observability` (on/off, retention, storage, alert thresholds),
    environment, GPU nodes, mesh, Postgres backups (prod)."""
    provider: k8s.Provider
    """The cluster's explicit provider."""
    ingress: IngressHandle
    """Grafana is published through it (`grafana.<domain>`)."""
    namespace: pulumi.Input[str] = NAMESPACE
    """Pass the created Namespace's name so everything waits for it."""
    gpu_ready: Sequence[pulumi.Resource] = ()
    """`GpuSupport.ready`: the DCGM exporter runs with the `nvidia` RuntimeClass."""
    vpa_ready: Sequence[pulumi.Resource] = ()
    """`Autoscalers.vpa_ready`: with `vpa.enabled` the chart makes VerticalPodAutoscalers
    for Grafana and Prometheus, whose CRDs must exist first."""


def postgres_backups_enabled(config: PlatformConfig) -> bool:
    """Whether the gateway's Postgres is backed up (prod), so a backup-age alert applies."""
    return config.is_prod


class Observability(pulumi.ComponentResource):
    """kube-prometheus-stack, DCGM exporter, monitors, dashboards and alert rules."""

    release: k8s.helm.v3.Release | None
    grafana_url: str | None

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:observability:Observability", name, None, opts)
        config = args.config
        self.release = None
        self.grafana_url = None
        if not config.observability.enabled:
            self.register_outputs({})
            return
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = standard_labels(name="monitoring", component=COMPONENT)

        password = random.RandomPassword(
            f"{name}-grafana-admin-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": ADMIN_SECRET, "namespace": args.namespace, "labels": labels},
            type="Opaque",
            string_data=pulumi.Output.secret(
                {ADMIN_USER_KEY: ADMIN_USER, ADMIN_PASSWORD_KEY: password.result}
            ),
            opts=child,
        )
        settings = StackSettings(
            prod=config.is_prod,
            retention_days=config.observability.retention_days,
            storage_gib=config.observability.storage_gib,
            admin_secret=ADMIN_SECRET,
            recommendations=config.vpa.enabled,
        )
        chart = versions.KUBE_PROMETHEUS_STACK
        release = pinned_release(
            f"{name}-kube-prometheus-stack",
            chart,
            release_name=RELEASE,
            namespace=args.namespace,
            overlays=args.config.helm_values,
            # Plain values (known in previews); Grafana reads the Secret made just above.
            values=kube_prometheus_stack_values(settings),
            timeout_seconds=HELM_TIMEOUT_SECONDS,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[admin, *args.vpa_ready])
            ),
        )
        self.release = release
        after_crds = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[release])
        )

        if config.cluster.gpu_nodes:
            pinned_release(
                f"{name}-dcgm-exporter",
                versions.DCGM_EXPORTER,
                namespace=args.namespace,
                overlays=args.config.helm_values,
                values=dcgm_exporter_values(),
                timeout_seconds=HELM_TIMEOUT_SECONDS,
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[release, *args.gpu_ready])
                ),
            )

        for monitor in platform_monitors(config):
            k8s.apiextensions.CustomResource(
                f"{name}-{monitor.kind.lower()}-{monitor.name}",
                api_version=MONITORING_API,
                kind=monitor.kind,
                metadata={"name": monitor.name, "namespace": args.namespace, "labels": labels},
                spec=monitor.spec,
                opts=after_crds,
            )

        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version=MONITORING_API,
            kind="PrometheusRule",
            metadata={"name": "llm-platform", "namespace": args.namespace, "labels": labels},
            spec={
                "groups": rule_groups(
                    config.observability.alerts,
                    postgres_backups=postgres_backups_enabled(config),
                )
            },
            opts=after_crds,
        )

        dashboard_labels = {**labels, DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE}
        boards = all_dashboards(scaled=scaled_servers(config), recommendations=config.vpa.enabled)
        for uid, board in boards.items():
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{uid}",
                metadata={
                    "name": f"dashboard-{uid}",
                    "namespace": args.namespace,
                    "labels": dashboard_labels,
                },
                data={f"{uid}.json": dashboard_json(board)},
                opts=child,
            )

        grafana = PublishedService(
            f"{name}-grafana",
            PublishArgs(
                ingress=args.ingress,
                host_prefix=HOST_PREFIX,
                namespace=args.namespace,
                service_name=GRAFANA_SERVICE,
                service_port=GRAFANA_SERVICE_PORT,
                component=COMPONENT,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
        )
        self.grafana_url = grafana.url
        self.register_outputs({"grafana_url": self.grafana_url})

"""Helm values of kube-prometheus-stack and the DCGM exporter (pure; keys checked in tests).

kube-prometheus-stack: Prometheus keeps `retention_days` on a PVC of `storage_gib`
(size-based retention at 90% of it, so a full disk never stops ingestion); it selects
every ServiceMonitor, PodMonitor and PrometheusRule in the cluster, not only those
labelled with its release. Grafana reads its admin credentials from an existing Secret
(never from values) and loads dashboards from ConfigMaps labelled `grafana_dashboard`.
k3s runs the control plane in one process whose metrics ports are not exposed, so the
controller-manager, scheduler, proxy and etcd targets and their rules are off. Dev runs
small without Grafana/Alertmanager persistence; prod persists both and sizes requests.

DCGM exporter: on nodes with the GPU class label, tolerating the GPU taint, through the
`nvidia` runtime; its chart's ServiceMonitor is on (needs the operator's CRDs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config.cluster import GPU_CLASS_LABEL, GPU_TAINT_KEY

RELEASE = "monitoring"
FULLNAME = "kps"
"""`fullnameOverride`: short names for the operator's objects (kps-prometheus, ...)."""
GRAFANA_SERVICE = f"{RELEASE}-grafana"
"""The grafana subchart's Service: `<release>-grafana` (its `grafana.fullname` helper)."""
GRAFANA_SERVICE_PORT = 80
PROMETHEUS_SERVICE = f"{FULLNAME}-prometheus"
"""The chart's Prometheus Service (`kube-prometheus-stack.fullname`-prometheus), port 9090."""
PROMETHEUS_PORT = 9090
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
ADMIN_USER_KEY = "admin-user"
ADMIN_PASSWORD_KEY = "admin-password"  # noqa: S105 (a key name in the Secret)
RETENTION_SIZE_SHARE = 0.9
NVIDIA_RUNTIME_CLASS = "nvidia"
"""The RuntimeClass the cluster area's GPU support creates (passed in as `gpu_ready`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class StackSettings:
    """What the kube-prometheus-stack values depend on."""

    prod: bool
    retention_days: int
    storage_gib: int
    admin_secret: str
    """Secret holding `admin-user` and `admin-password` for Grafana."""
    recommendations: bool = False
    """VerticalPodAutoscalers in recommendation mode for Grafana and Prometheus (the
    charts' own `verticalPodAutoscaler`; the VPA CRDs must be installed)."""


_RECREATE = {"type": "Recreate"}
_SIDECAR_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"cpu": "100m", "memory": "128Mi"},
}


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def _pvc(size_gib: int) -> dict[str, Any]:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{size_gib}Gi"}},
            }
        }
    }


VPA_METRIC_PREFIX = "kube"
VPA_RECOMMENDATION = f"{VPA_METRIC_PREFIX}_verticalpodautoscaler_status_recommendation_containerrecommendations_target"
"""What kube-state-metrics exports of each VPA's `target` recommendation (`VPA_METRICS`:
its name is `metricNamePrefix` `_` the metric's name)."""

VPA_METRICS: dict[str, Any] = {
    "kind": "CustomResourceStateMetrics",
    "spec": {
        "resources": [
            {
                "groupVersionKind": {
                    "group": "autoscaling.k8s.io",
                    "kind": "VerticalPodAutoscaler",
                    "version": "v1",
                },
                "labelsFromPath": {
                    "namespace": ["metadata", "namespace"],
                    "target_kind": ["spec", "targetRef", "kind"],
                    "target_name": ["spec", "targetRef", "name"],
                    "verticalpodautoscaler": ["metadata", "name"],
                },
                "metricNamePrefix": VPA_METRIC_PREFIX,
                "metrics": [
                    {
                        "name": VPA_RECOMMENDATION.removeprefix(f"{VPA_METRIC_PREFIX}_"),
                        "help": f"Recommended {resource} request of the container.",
                        "commonLabels": {"resource": resource, "unit": unit},
                        "each": {
                            "type": "Gauge",
                            "gauge": {
                                "path": ["status", "recommendation", "containerRecommendations"],
                                "labelsFromPath": {"container": ["containerName"]},
                                "valueFrom": ["target", resource],
                            },
                        },
                    }
                    for resource, unit in (("cpu", "core"), ("memory", "byte"))
                ],
            }
        ]
    },
}
"""kube-state-metrics' custom resource state config that exports each VPA's target
recommendation (kube-state-metrics v2.20.0 `docs/metrics/extend/
customresourcestate-metrics.md`, its VerticalPodAutoscaler example): one gauge per
container and resource, cores and bytes, as `kube_pod_container_resource_requests`."""


def prometheus_url(namespace: str) -> str:
    """Prometheus's HTTP API inside the cluster (what KEDA's triggers query)."""
    return f"http://{PROMETHEUS_SERVICE}.{namespace}.svc.cluster.local:{PROMETHEUS_PORT}"


def kube_prometheus_stack_values(settings: StackSettings) -> dict[str, Any]:
    """Values of the kube-prometheus-stack chart."""
    prod = settings.prod
    retention_size = max(1, int(settings.storage_gib * RETENTION_SIZE_SHARE))
    prometheus_spec: dict[str, Any] = {
        "retention": f"{settings.retention_days}d",
        "retentionSize": f"{retention_size}GB",
        "storageSpec": _pvc(settings.storage_gib),
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "probeSelectorNilUsesHelmValues": False,
        "scrapeConfigSelectorNilUsesHelmValues": False,
        "resources": (
            _resources("500m", "2Gi", "2", "6Gi")
            if prod
            else _resources("100m", "512Mi", "1", "2Gi")
        ),
    }
    alertmanager_spec: dict[str, Any] = {
        "resources": (
            _resources("50m", "64Mi", "200m", "256Mi")
            if prod
            else _resources("10m", "32Mi", "100m", "128Mi")
        ),
    }
    grafana: dict[str, Any] = {
        "admin": {
            "existingSecret": settings.admin_secret,
            "userKey": ADMIN_USER_KEY,
            "passwordKey": ADMIN_PASSWORD_KEY,
        },
        "defaultDashboardsEnabled": True,
        "sidecar": {
            "dashboards": {
                "enabled": True,
                "label": DASHBOARD_LABEL,
                "labelValue": DASHBOARD_LABEL_VALUE,
                "searchNamespace": "ALL",
            },
            # Without these each sidecar takes the namespace's default (1 CPU limit).
            "resources": _SIDECAR_RESOURCES,
        },
        "service": {"port": GRAFANA_SERVICE_PORT},
        "resources": (
            _resources("100m", "256Mi", "500m", "512Mi")
            if prod
            else _resources("50m", "128Mi", "500m", "384Mi")
        ),
        # The volume is ReadWriteOnce: a surge pod on another node could never mount it,
        # so a persistent Grafana rolls by replacing its pod.
        **(
            {
                "persistence": {"enabled": True, "size": "5Gi"},
                "deploymentStrategy": _RECREATE,
                # The pod's fsGroup makes the volume Grafana's; the chart's root init
                # container that chowns it (CHOWN capability) is not needed.
                "initChownData": {"enabled": False},
            }
            if prod
            else {"persistence": {"enabled": False}}
        ),
    }
    if prod:
        alertmanager_spec["storage"] = _pvc(2)
    prometheus: dict[str, Any] = {"prometheusSpec": prometheus_spec}
    values: dict[str, Any] = {
        "fullnameOverride": FULLNAME,
        "crds": {"enabled": True},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        # The chart makes no rules for the targets switched off above (nor for Windows
        # nodes, whose monitoring is off by default).
        "defaultRules": {"create": True},
        "prometheus": prometheus,
        "alertmanager": {"enabled": True, "alertmanagerSpec": alertmanager_spec},
        "grafana": grafana,
        "prometheusOperator": {
            "resources": _resources("50m", "128Mi", "500m", "512Mi"),
            # The hook Jobs that patch the operator's webhooks (each install and upgrade).
            "admissionWebhooks": {"patch": {"resources": _SIDECAR_RESOURCES}},
        },
        # One per node: sized so that the DaemonSet on every node fits the quota.
        "prometheus-node-exporter": {"resources": _resources("20m", "32Mi", "200m", "64Mi")},
    }
    if settings.recommendations:
        # The chart's default update mode would evict Prometheus to apply its advice.
        prometheus["verticalPodAutoscaler"] = {
            "enabled": True,
            "updatePolicy": {"updateMode": "Off"},
        }
        # Recommendation mode is the grafana chart's default (`updateMode: "Off"`).
        grafana["verticalPodAutoscaler"] = {"enabled": True}
        values["kube-state-metrics"] = {
            "customResourceState": {"enabled": True, "config": VPA_METRICS},
            "rbac": {
                "extraRules": [
                    {
                        "apiGroups": ["autoscaling.k8s.io"],
                        "resources": ["verticalpodautoscalers"],
                        "verbs": ["list", "watch"],
                    }
                ]
            },
        }
    return values


def dcgm_exporter_values() -> dict[str, Any]:
    """Values of the dcgm-exporter chart: GPU nodes only, through the nvidia runtime."""
    return {
        "runtimeClassName": NVIDIA_RUNTIME_CLASS,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": GPU_CLASS_LABEL, "operator": "Exists"}]}
                    ]
                }
            }
        },
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        # `service.enable` (not `enabled`) in this chart; the ServiceMonitor scrapes it.
        "service": {"enable": True},
        "serviceMonitor": {"enabled": True, "interval": "30s"},
        "resources": _resources("50m", "128Mi", "500m", "512Mi"),
    }

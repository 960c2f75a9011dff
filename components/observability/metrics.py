"""The one catalogue of metric names the platform's exporters publish, with their sources.

Dashboards and alert rules may only query names listed here; the tests parse every
query and fail on any other name. Each exporter names where its metric names were read
(repository@ref:path or the upstream documentation page), so a version bump knows what
to re-check. Names are spelled as Prometheus stores them: counters of Python's
`prometheus_client` (vLLM, LiteLLM) carry the `_total` suffix, histograms are listed with
their `_bucket`, `_sum` and `_count` series.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Prometheus metric types, as far as queries care."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, kw_only=True, slots=True)
class Exporter:
    """Something Prometheus scrapes, and where its metric names were verified."""

    name: str
    source: str
    metrics: tuple[tuple[str, Kind], ...]


def _histogram_series(name: str) -> tuple[str, ...]:
    return (f"{name}_bucket", f"{name}_sum", f"{name}_count")


VLLM = Exporter(
    name="vllm",
    source=(
        "vllm-project/vllm@v0.33.0: vllm/v1/metrics/loggers.py (label model_name is the "
        "served model name)"
    ),
    metrics=(
        ("vllm:time_to_first_token_seconds", Kind.HISTOGRAM),
        ("vllm:inter_token_latency_seconds", Kind.HISTOGRAM),
        ("vllm:e2e_request_latency_seconds", Kind.HISTOGRAM),
        ("vllm:request_queue_time_seconds", Kind.HISTOGRAM),
        ("vllm:num_requests_running", Kind.GAUGE),
        ("vllm:num_requests_waiting", Kind.GAUGE),
        ("vllm:kv_cache_usage_perc", Kind.GAUGE),
        ("vllm:prompt_tokens_total", Kind.COUNTER),
        ("vllm:generation_tokens_total", Kind.COUNTER),
        ("vllm:request_success_total", Kind.COUNTER),
        ("vllm:num_preemptions_total", Kind.COUNTER),
    ),
)

LITELLM = Exporter(
    name="litellm",
    source=(
        "litellm 1.83.14 wheel: litellm/integrations/prometheus.py and "
        "litellm/types/integrations/prometheus.py (labels: requested_model, status_code, "
        "model, api_provider, fallback_model); every name is checked against the real "
        "proxy's /metrics/ in tests/live/test_litellm_proxy.py"
    ),
    metrics=(
        ("litellm_proxy_total_requests_metric_total", Kind.COUNTER),
        ("litellm_proxy_failed_requests_metric_total", Kind.COUNTER),
        ("litellm_input_tokens_metric_total", Kind.COUNTER),
        ("litellm_output_tokens_metric_total", Kind.COUNTER),
        ("litellm_spend_metric_total", Kind.COUNTER),
        ("litellm_deployment_successful_fallbacks_total", Kind.COUNTER),
        ("litellm_deployment_failed_fallbacks_total", Kind.COUNTER),
        ("litellm_deployment_cooled_down_total", Kind.COUNTER),
        ("litellm_request_total_latency_metric", Kind.HISTOGRAM),
        ("litellm_llm_api_time_to_first_token_metric", Kind.HISTOGRAM),
        ("litellm_deployment_state", Kind.GAUGE),
    ),
)

TRAEFIK = Exporter(
    name="traefik",
    source=(
        "doc.traefik.io observability/metrics/overview (Traefik v3; labels code, method, "
        "protocol, service, entrypoint); chart traefik 41.3.0 pod port `metrics`"
    ),
    metrics=(
        ("traefik_service_requests_total", Kind.COUNTER),
        ("traefik_service_request_duration_seconds", Kind.HISTOGRAM),
        ("traefik_entrypoint_requests_total", Kind.COUNTER),
        ("traefik_open_connections", Kind.GAUGE),
        ("traefik_tls_certs_not_after", Kind.GAUGE),
    ),
)

LINKERD_PROXY = Exporter(
    name="linkerd-proxy",
    source=(
        "linkerd/linkerd2@edge-26.8.3: viz/charts/linkerd-viz/templates/prometheus.yaml "
        "(job linkerd-proxy, port linkerd-admin) and the viz dashboards' queries"
    ),
    metrics=(
        ("request_total", Kind.COUNTER),
        ("response_total", Kind.COUNTER),
        ("response_latency_ms", Kind.HISTOGRAM),
        ("tcp_open_connections", Kind.GAUGE),
        ("inbound_http_authz_deny_total", Kind.COUNTER),
    ),
)

CERT_MANAGER = Exporter(
    name="cert-manager",
    source=(
        "cert-manager/cert-manager@v1.21.1: pkg/metrics/certificates_test.go (labels name, "
        "namespace, issuer_name); controller pod port http-metrics (templates/deployment.yaml)"
    ),
    metrics=(
        ("certmanager_certificate_expiration_timestamp_seconds", Kind.GAUGE),
        ("certmanager_certificate_ready_status", Kind.GAUGE),
    ),
)

CNPG = Exporter(
    name="cloudnative-pg",
    source=(
        "cloudnative-pg/cloudnative-pg@v1.30.0 docs/src/monitoring.md (instance exporter, "
        "pod port `metrics`) and the Barman Cloud plugin's observability page (metrics "
        "exposed through the instance manager's exporter)"
    ),
    metrics=(
        ("cnpg_collector_up", Kind.GAUGE),
        ("cnpg_pg_replication_lag", Kind.GAUGE),
        ("barman_cloud_cloudnative_pg_io_last_available_backup_timestamp", Kind.GAUGE),
        ("barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp", Kind.GAUGE),
    ),
)

DCGM = Exporter(
    name="dcgm-exporter",
    source=(
        "NVIDIA/dcgm-exporter@4.5.3-4.8.2: etc/default-counters.csv (labels gpu, UUID, "
        "Hostname, modelName)"
    ),
    metrics=(
        ("DCGM_FI_DEV_GPU_UTIL", Kind.GAUGE),
        ("DCGM_FI_DEV_FB_USED", Kind.GAUGE),
        ("DCGM_FI_DEV_FB_FREE", Kind.GAUGE),
        ("DCGM_FI_DEV_FB_RESERVED", Kind.GAUGE),
        ("DCGM_FI_DEV_GPU_TEMP", Kind.GAUGE),
        ("DCGM_FI_DEV_POWER_USAGE", Kind.GAUGE),
    ),
)

KUBE_STATE_METRICS = Exporter(
    name="kube-state-metrics",
    source=(
        "kubernetes/kube-state-metrics@v2.20.0 (kube-prometheus-stack 88.5.3's subchart "
        "8.4.0): docs/metrics/workload/deployment-metrics.md (labels namespace, deployment), "
        "docs/metrics/workload/pod-metrics.md (labels namespace, pod, container, resource, "
        "unit: cores and bytes); the VPA recommendation from the custom resource state config "
        "of observability/values.py `VPA_METRICS` (docs/metrics/extend/"
        "customresourcestate-metrics.md: name = metricNamePrefix _ metric name)"
    ),
    metrics=(
        ("kube_deployment_spec_replicas", Kind.GAUGE),
        ("kube_deployment_status_replicas_available", Kind.GAUGE),
        ("kube_pod_container_resource_requests", Kind.GAUGE),
        (
            "kube_verticalpodautoscaler_status_recommendation_containerrecommendations_target",
            Kind.GAUGE,
        ),
    ),
)

PROMETHEUS = Exporter(
    name="prometheus",
    source="Prometheus itself: `up` is written for every scrape target (1 reachable, 0 not)",
    metrics=(("up", Kind.GAUGE),),
)

EXPORTERS: tuple[Exporter, ...] = (
    VLLM,
    LITELLM,
    TRAEFIK,
    LINKERD_PROXY,
    CERT_MANAGER,
    CNPG,
    DCGM,
    KUBE_STATE_METRICS,
    PROMETHEUS,
)


def series_names() -> frozenset[str]:
    """Every series name a query may select (histograms as their three series)."""
    names: set[str] = set()
    for exporter in EXPORTERS:
        for name, kind in exporter.metrics:
            if kind is Kind.HISTOGRAM:
                names.update(_histogram_series(name))
            else:
                names.add(name)
    return frozenset(names)


def exporter_of(series: str) -> str:
    """The exporter publishing a series name; KeyError for an unknown name."""
    for exporter in EXPORTERS:
        for name, kind in exporter.metrics:
            if series == name or (kind is Kind.HISTOGRAM and series in _histogram_series(name)):
                return exporter.name
    raise KeyError(f"{series!r} is not in the metric catalogue")

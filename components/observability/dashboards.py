"""Grafana dashboards as plain dicts (pure, deterministic), shipped as sidecar ConfigMaps.

Four dashboards: LLM traffic (requests, tokens in/out, time to first token and
inter-token latency per model, fallback rate, cloud spend, gateway 4xx/5xx; with
autoscaled models also their replicas over time and the GPU-hours and GPU cost their
scaling down saved), model servers (KV-cache usage, queue length, running requests per
vLLM server), GPUs (utilisation, memory, temperature, power) and certificates and backups
(expiry of every cert-manager certificate, age of the newest Postgres backup). With
`vpa.enabled` a fifth, resources: each container's CPU and memory requests beside the
VPA's recommendation. Queries use Grafana's `$__rate_interval`, `$__range` and the
`$model` variable; every metric name is in `metrics`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from components.config import PlatformConfig
from components.inference.endpoints import INFERENCE_NAMESPACE, model_service_name

from . import queries
from .values import VPA_RECOMMENDATION

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
MODEL = '{model_name=~"$model"}'
PANEL_WIDTH = 12
PANEL_HEIGHT = 8
SCHEMA_VERSION = 39
LOCAL_PROVIDER = "hosted_vllm"
"""LiteLLM's provider of local vLLM models (`hosted_vllm/<name>`); the tests check that the
gateway's config spells it the same."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """One query of a panel, with its legend."""

    expr: str
    legend: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Panel:
    """A time series (or stat) panel."""

    title: str
    unit: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"
    description: str = ""


def _panel(panel: Panel, index: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {
            "x": (index % 2) * PANEL_WIDTH,
            "y": (index // 2) * PANEL_HEIGHT,
            "w": PANEL_WIDTH,
            "h": PANEL_HEIGHT,
        },
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
            }
            for i, target in enumerate(panel.targets)
        ],
    }


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }


def _query_variable(name: str, label: str, query: str) -> dict[str, Any]:
    """A multi-value variable (`All` matching anything) of the label values `query` finds."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": name},
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "refresh": 2,
        "sort": 1,
    }


def _model_variable() -> dict[str, Any]:
    return _query_variable("model", "Model", "label_values(vllm:num_requests_running, model_name)")


def dashboard(
    *, uid: str, title: str, panels: tuple[Panel, ...], per_model: bool = False
) -> dict[str, Any]:
    """A Grafana dashboard model (schema 39) with a datasource variable and the panels."""
    variables = [_datasource_variable()]
    if per_model:
        variables.append(_model_variable())
    return {
        "uid": uid,
        "title": title,
        "tags": ["llm-platform"],
        "timezone": "utc",
        "editable": False,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": [_panel(panel, i) for i, panel in enumerate(panels)],
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class ScaledServer:
    """An autoscaled model server, for the replicas and savings panels."""

    model: str
    deployment: str
    max_replicas: int
    gpus: int
    """GPUs per replica."""
    gpu_hourly_cost_usd: float
    """What one GPU of its class costs per hour (`cluster.gpu_classes.<c>.hourly_cost_usd`)."""


def scaled_servers(config: PlatformConfig) -> tuple[ScaledServer, ...]:
    """The model servers that follow demand, by model name."""
    servers = []
    for name in config.autoscaled_models:
        model = config.inference.models[name]
        assert model.autoscaling is not None and model.gpu_class is not None
        servers.append(
            ScaledServer(
                model=name,
                deployment=model_service_name(name),
                max_replicas=model.autoscaling.max,
                gpus=model.gpu_count,
                gpu_hourly_cost_usd=config.cluster.gpu_classes[model.gpu_class].hourly_cost_usd,
            )
        )
    return tuple(servers)


def _idle_gpu_hours(server: ScaledServer) -> str:
    """GPU-hours over the dashboard's range that the server's `max` replicas would have
    held and its actual replicas did not (one sample a minute, 60 per hour)."""
    replicas = (
        "max(kube_deployment_spec_replicas"
        f'{{namespace="{INFERENCE_NAMESPACE}", deployment="{server.deployment}"}})'
    )
    idle = f"({server.max_replicas} - {replicas}) * {server.gpus}"
    return f"sum_over_time(({idle})[$__range:1m]) / 60"


def scaling_panels(servers: tuple[ScaledServer, ...]) -> tuple[Panel, ...]:
    """Replicas over time, and what scaling down saved, of the autoscaled servers."""
    pattern = "|".join(s.deployment for s in servers)
    selector = f'{{namespace="{INFERENCE_NAMESPACE}", deployment=~"{pattern}"}}'
    return (
        Panel(
            title="Autoscaled model servers: replicas",
            unit="short",
            description="Replicas KEDA asks for and replicas ready, per model server.",
            targets=(
                Target(
                    expr=f"max by (deployment) (kube_deployment_spec_replicas{selector})",
                    legend="wanted {{deployment}}",
                ),
                Target(
                    expr=f"max by (deployment) (kube_deployment_status_replicas_available{selector})",
                    legend="ready {{deployment}}",
                ),
            ),
        ),
        Panel(
            title="GPU-hours saved by scaling down (time range)",
            unit="short",
            kind="stat",
            description="GPU-hours that each model's `autoscaling.max` replicas would have "
            "held over the dashboard's time range and its replicas did not.",
            targets=tuple(
                Target(expr=_idle_gpu_hours(server), legend=server.model) for server in servers
            ),
        ),
        Panel(
            title="GPU cost saved by scaling down, USD (time range)",
            unit="currencyUSD",
            kind="stat",
            description="The GPU-hours saved, priced at the GPU class's `hourly_cost_usd`.",
            targets=tuple(
                Target(
                    expr=f"({_idle_gpu_hours(server)}) * {server.gpu_hourly_cost_usd:g}",
                    legend=server.model,
                )
                for server in servers
            ),
        ),
    )


def traffic_dashboard(scaled: tuple[ScaledServer, ...] = ()) -> dict[str, Any]:
    """Gateway traffic: requests, tokens, latency per model, fallbacks, spend, errors; the
    replicas and savings of autoscaled servers when there are any."""
    panels: tuple[Panel, ...] = (
        Panel(
            title="Requests per model",
            unit="reqps",
            targets=(
                Target(
                    expr="sum by (requested_model) "
                    f"(rate(litellm_proxy_total_requests_metric_total[{RATE}]))",
                    legend="{{requested_model}}",
                ),
            ),
        ),
        Panel(
            title="Tokens in / out per model",
            unit="short",
            description="Tokens per second counted by LiteLLM (local and cloud models).",
            targets=(
                Target(
                    expr=f"sum by (model) (rate(litellm_input_tokens_metric_total[{RATE}]))",
                    legend="in {{model}}",
                ),
                Target(
                    expr=f"sum by (model) (rate(litellm_output_tokens_metric_total[{RATE}]))",
                    legend="out {{model}}",
                ),
            ),
        ),
        Panel(
            title="Time to first token per model (vLLM)",
            unit="s",
            targets=(
                Target(expr=queries.ttft_quantile(0.5, RATE, MODEL), legend="p50 {{model_name}}"),
                Target(expr=queries.ttft_quantile(0.95, RATE, MODEL), legend="p95 {{model_name}}"),
            ),
        ),
        Panel(
            title="Inter-token latency per model (vLLM)",
            unit="s",
            targets=(
                Target(
                    expr=queries.inter_token_quantile(0.5, RATE, MODEL),
                    legend="p50 {{model_name}}",
                ),
                Target(
                    expr=queries.inter_token_quantile(0.95, RATE, MODEL),
                    legend="p95 {{model_name}}",
                ),
            ),
        ),
        Panel(
            title="Fallback rate to the cloud",
            unit="percentunit",
            description="Share of gateway requests served by a fallback model.",
            targets=(Target(expr=queries.fallback_rate(RATE), legend="fallback share"),),
        ),
        Panel(
            title="Cloud spend per model (USD per hour)",
            unit="currencyUSD",
            description="LiteLLM's spend of cloud providers; local models (provider "
            f"{LOCAL_PROVIDER}) are charged at their GPU cost and shown apart.",
            targets=(
                Target(
                    expr="sum by (model, api_provider) (increase(litellm_spend_metric_total"
                    f'{{api_provider!="{LOCAL_PROVIDER}"}}[1h]))',
                    legend="{{api_provider}} {{model}}",
                ),
                Target(
                    expr="sum by (model) (increase(litellm_spend_metric_total"
                    f'{{api_provider="{LOCAL_PROVIDER}"}}[1h]))',
                    legend="local GPU cost {{model}}",
                ),
            ),
        ),
        Panel(
            title="Gateway 4xx / 5xx (Traefik -> LiteLLM)",
            unit="reqps",
            targets=(
                Target(expr=queries.gateway_status_rate("4", RATE), legend="4xx"),
                Target(expr=queries.gateway_status_rate("5", RATE), legend="5xx"),
            ),
        ),
        Panel(
            title="Gateway request latency p95",
            unit="s",
            targets=(
                Target(
                    expr="histogram_quantile(0.95, sum by (le, requested_model) "
                    f"(rate(litellm_request_total_latency_metric_bucket[{RATE}])))",
                    legend="{{requested_model}}",
                ),
            ),
        ),
    )
    if scaled:
        panels += scaling_panels(scaled)
    return dashboard(
        uid="llm-traffic", title="LLM platform: traffic", panels=panels, per_model=True
    )


def model_servers_dashboard() -> dict[str, Any]:
    """Per vLLM server: KV-cache usage, queue length, running requests, preemptions."""
    panels = (
        Panel(
            title="KV-cache usage per server",
            unit="percentunit",
            targets=(
                Target(
                    expr=f"max by (model_name, pod) (vllm:kv_cache_usage_perc{MODEL})",
                    legend="{{model_name}} {{pod}}",
                ),
            ),
        ),
        Panel(
            title="Queue length (waiting requests) per server",
            unit="short",
            targets=(
                Target(
                    expr=f"sum by (model_name, pod) (vllm:num_requests_waiting{MODEL})",
                    legend="{{model_name}} {{pod}}",
                ),
            ),
        ),
        Panel(
            title="Running requests per server",
            unit="short",
            targets=(
                Target(
                    expr=f"sum by (model_name, pod) (vllm:num_requests_running{MODEL})",
                    legend="{{model_name}} {{pod}}",
                ),
            ),
        ),
        Panel(
            title="Preemptions per second",
            unit="short",
            description="Requests evicted for lack of KV cache; sustained values mean the "
            "server is over-subscribed.",
            targets=(
                Target(
                    expr="sum by (model_name, pod) "
                    f"(rate(vllm:num_preemptions_total{MODEL}[{RATE}]))",
                    legend="{{model_name}} {{pod}}",
                ),
            ),
        ),
    )
    return dashboard(
        uid="llm-model-servers", title="LLM platform: model servers", panels=panels, per_model=True
    )


def gpu_dashboard() -> dict[str, Any]:
    """GPU utilisation, memory in use, temperature and power (DCGM exporter)."""
    gpu = "{{Hostname}} GPU {{gpu}}"
    panels = (
        Panel(
            title="GPU utilisation",
            unit="percent",
            targets=(Target(expr="DCGM_FI_DEV_GPU_UTIL", legend=gpu),),
        ),
        Panel(
            title="GPU memory in use",
            unit="percentunit",
            targets=(Target(expr=queries.gpu_memory_fraction(), legend=gpu),),
        ),
        Panel(
            title="GPU temperature",
            unit="celsius",
            targets=(Target(expr="DCGM_FI_DEV_GPU_TEMP", legend=gpu),),
        ),
        Panel(
            title="GPU power",
            unit="watt",
            targets=(Target(expr="DCGM_FI_DEV_POWER_USAGE", legend=gpu),),
        ),
    )
    return dashboard(uid="llm-gpus", title="LLM platform: GPUs", panels=panels)


def certificates_dashboard() -> dict[str, Any]:
    """Days left on every certificate, and the age of the newest Postgres backup."""
    panels = (
        Panel(
            title="Certificate expiry (days left, cert-manager)",
            unit="d",
            targets=(
                Target(
                    expr=f"({queries.certificate_seconds_left()}) / 86400",
                    legend="{{namespace}}/{{name}}",
                ),
            ),
        ),
        Panel(
            title="Certificates served by Traefik (days left)",
            unit="d",
            targets=(
                Target(expr="(traefik_tls_certs_not_after - time()) / 86400", legend="{{cn}}"),
            ),
        ),
        Panel(
            title="Newest Postgres backup (age)",
            unit="s",
            targets=(Target(expr=queries.backup_age_seconds(), legend="{{namespace}}"),),
        ),
    )
    return dashboard(
        uid="llm-certificates", title="LLM platform: certificates and backups", panels=panels
    )


def _requests_vs_recommendation(resource: str, unit: str) -> Panel:
    selector = f'{{resource="{resource}", namespace=~"$namespace"}}'
    return Panel(
        title=f"{resource.capitalize()}: requested vs recommended",
        unit=unit,
        description="What each container requests, and what the Vertical Pod Autoscaler "
        "(recommendation mode) would request from the use it observed.",
        targets=(
            Target(
                expr=f"max by (namespace, container) (kube_pod_container_resource_requests{selector})",
                legend="requested {{namespace}}/{{container}}",
            ),
            Target(
                expr=f"max by (namespace, target_name, container) ({VPA_RECOMMENDATION}{selector})",
                legend="recommended {{namespace}}/{{target_name}}/{{container}}",
            ),
        ),
    )


def resources_dashboard() -> dict[str, Any]:
    """Requests of the platform's containers beside the VPA's recommendations."""
    board = dashboard(
        uid="llm-resources",
        title="LLM platform: resource requests",
        panels=(
            _requests_vs_recommendation("cpu", "short"),
            _requests_vs_recommendation("memory", "bytes"),
        ),
    )
    board["templating"]["list"].append(_namespace_variable())
    return board


def _namespace_variable() -> dict[str, Any]:
    return _query_variable(
        "namespace", "Namespace", f"label_values({VPA_RECOMMENDATION}, namespace)"
    )


def all_dashboards(
    *, scaled: tuple[ScaledServer, ...] = (), recommendations: bool = False
) -> dict[str, dict[str, Any]]:
    """Every dashboard by uid: `scaled` adds the autoscaling panels to the traffic
    dashboard, `recommendations` the resources dashboard."""
    boards = [
        traffic_dashboard(scaled),
        model_servers_dashboard(),
        gpu_dashboard(),
        certificates_dashboard(),
    ]
    if recommendations:
        boards.append(resources_dashboard())
    return {board["uid"]: board for board in boards}


def dashboard_json(board: dict[str, Any]) -> str:
    """The dashboard as the JSON text Grafana's sidecar loads (stable key order)."""
    return json.dumps(board, indent=2, sort_keys=True)

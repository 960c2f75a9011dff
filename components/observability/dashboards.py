"""Grafana dashboards as plain dicts (pure, deterministic), shipped as sidecar ConfigMaps.

Four dashboards: LLM traffic (requests, tokens in/out, time to first token and
inter-token latency per model, fallback rate, cloud spend, gateway 4xx/5xx), model
servers (KV-cache usage, queue length, running requests per vLLM server), GPUs
(utilisation, memory, temperature, power) and certificates and backups (expiry of every
cert-manager certificate, age of the newest Postgres backup). Queries use Grafana's
`$__rate_interval` and the `$model` variable; every metric name is in `metrics`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import queries

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


def _model_variable() -> dict[str, Any]:
    query = "label_values(vllm:num_requests_running, model_name)"
    return {
        "name": "model",
        "label": "Model",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "model"},
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "refresh": 2,
        "sort": 1,
    }


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


def traffic_dashboard() -> dict[str, Any]:
    """Gateway traffic: requests, tokens, latency per model, fallbacks, spend, errors."""
    panels = (
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


def all_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard by uid."""
    boards = (
        traffic_dashboard(),
        model_servers_dashboard(),
        gpu_dashboard(),
        certificates_dashboard(),
    )
    return {board["uid"]: board for board in boards}


def dashboard_json(board: dict[str, Any]) -> str:
    """The dashboard as the JSON text Grafana's sidecar loads (stable key order)."""
    return json.dumps(board, indent=2, sort_keys=True)

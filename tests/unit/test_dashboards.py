"""Dashboards and alert rules: valid JSON, PromQL that parses, only catalogued metric names."""

from __future__ import annotations

import json
from typing import Any

import promql_parser
import pytest

from components.config.addons import AlertThresholds
from components.observability import dashboards, metrics, queries, rules
from tests.support import stack_config, vector_selectors

GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "6h",
    '"$model"': '".*"',
    '"$namespace"': '".*"',
}


def _as_sent(expr: str) -> str:
    """PromQL with Grafana's variables replaced by what Grafana sends."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _parse(expr: str) -> Any:
    """Parse PromQL as Grafana sends it."""
    return promql_parser.parse(_as_sent(expr))


def _selected_names(expr: str) -> set[str]:
    selectors = vector_selectors(_as_sent(expr))
    for node in selectors:
        assert node.name, f"selector without a metric name in {expr!r}"
    return {node.name for node in selectors}


def _prod_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard with every optional panel (prod autoscales a model, runs the VPA)."""
    config = stack_config("prod")
    return dashboards.all_dashboards(
        scaled=dashboards.scaled_servers(config), recommendations=config.vpa.enabled
    )


def _dashboard_exprs() -> list[tuple[str, str]]:
    found = []
    for uid, board in _prod_dashboards().items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((f"{uid}/{panel['title']}", target["expr"]))
    return found


def _rule_exprs(postgres_backups: bool) -> list[tuple[str, str]]:
    groups = rules.rule_groups(AlertThresholds(), postgres_backups=postgres_backups)
    return [(r["alert"], r["expr"]) for g in groups for r in g["rules"]]


def test_every_dashboard_is_json_with_unique_uids_and_panel_ids() -> None:
    assert len(dashboards.all_dashboards()) == 4
    boards = _prod_dashboards()
    assert len(boards) == 5
    for uid, board in boards.items():
        loaded = json.loads(dashboards.dashboard_json(board))
        assert loaded["uid"] == uid
        ids = [p["id"] for p in loaded["panels"]]
        assert len(ids) == len(set(ids))
        assert all(p["targets"] for p in loaded["panels"])


def test_dashboard_json_is_deterministic() -> None:
    first = {u: dashboards.dashboard_json(b) for u, b in dashboards.all_dashboards().items()}
    second = {u: dashboards.dashboard_json(b) for u, b in dashboards.all_dashboards().items()}
    assert first == second


@pytest.mark.parametrize(("where", "expr"), _dashboard_exprs())
def test_dashboard_queries_parse_and_use_catalogued_metrics(where: str, expr: str) -> None:
    names = _selected_names(expr)
    assert names, where
    assert names <= metrics.series_names(), (where, names - metrics.series_names())


@pytest.mark.parametrize(("alert", "expr"), _rule_exprs(postgres_backups=True))
def test_rule_expressions_parse_and_use_catalogued_metrics(alert: str, expr: str) -> None:
    names = _selected_names(expr)
    assert names <= metrics.series_names(), (alert, names - metrics.series_names())


def test_the_name_check_catches_an_unknown_metric() -> None:
    # The old vLLM v0 gauge, removed in v1: a dashboard using it would show nothing.
    names = _selected_names("max(vllm:gpu_cache_usage_perc)")
    assert not names <= metrics.series_names()
    with pytest.raises(KeyError):
        metrics.exporter_of("vllm:gpu_cache_usage_perc")


def test_the_parser_rejects_broken_promql() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum(rate(vllm:prompt_tokens_total[5m])")


def test_the_panels_the_issue_asks_for_exist() -> None:
    used = {
        metrics.exporter_of(name): name
        for _, expr in _dashboard_exprs()
        for name in _selected_names(expr)
    }
    assert {"vllm", "litellm", "traefik", "dcgm-exporter", "cert-manager", "cloudnative-pg"} <= set(
        used
    )
    exprs = " ".join(expr for _, expr in _dashboard_exprs())
    for needed in (
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
        "vllm:kv_cache_usage_perc",
        "vllm:num_requests_waiting",
        "litellm_input_tokens_metric_total",
        "litellm_output_tokens_metric_total",
        "litellm_deployment_successful_fallbacks_total",
        "litellm_spend_metric_total",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_FB_USED",
        "certmanager_certificate_expiration_timestamp_seconds",
    ):
        assert needed in exprs, needed


def test_local_provider_matches_the_gateway_config() -> None:
    from components.llm_gateway.litellm_config import LOCAL_PROVIDER

    assert dashboards.LOCAL_PROVIDER == LOCAL_PROVIDER


# --- rules -------------------------------------------------------------------------------


def test_rules_carry_runbooks_severities_and_the_issue_alerts() -> None:
    groups = rules.rule_groups(AlertThresholds(), postgres_backups=True)
    alerts = {r["alert"]: r for g in groups for r in g["rules"]}
    assert set(alerts) == {
        "ModelServerDown",
        "FallbackRateHigh",
        "TimeToFirstTokenSlow",
        "GpuMemoryNearFull",
        "CertificateExpiringSoon",
        "PostgresBackupTooOld",
        "GatewayErrorRateHigh",
    }
    for rule in alerts.values():
        assert len(rule["annotations"]["runbook"]) > 80
        assert rule["labels"]["severity"] in {"warning", "critical"}
    assert alerts["FallbackRateHigh"]["for"] == "10m"


def test_thresholds_come_from_config() -> None:
    thresholds = AlertThresholds(
        fallback_rate=0.35, ttft_p95_seconds=2.5, gpu_memory_fraction=0.9, gateway_5xx_rate=0.01
    )
    alerts = {a.name: a.expr for a in rules.platform_alerts(thresholds, postgres_backups=False)}
    assert alerts["FallbackRateHigh"].endswith("> 0.35")
    assert alerts["TimeToFirstTokenSlow"].endswith("> 2.5")
    assert alerts["GpuMemoryNearFull"].endswith("> 0.9")
    assert alerts["GatewayErrorRateHigh"].endswith("> 0.01")
    assert "PostgresBackupTooOld" not in alerts


def test_certificate_rule_warns_at_fourteen_days() -> None:
    expr = {
        a.name: a.expr for a in rules.platform_alerts(AlertThresholds(), postgres_backups=False)
    }["CertificateExpiringSoon"]
    tree = _parse(expr)
    assert isinstance(tree, promql_parser.BinaryExpr)
    assert "14 * 86400" in expr


def test_dashboards_and_rules_share_their_queries() -> None:
    rule_text = " ".join(expr for _, expr in _rule_exprs(postgres_backups=True))
    assert queries.fallback_rate("5m") in rule_text
    dash_text = " ".join(expr for _, expr in _dashboard_exprs())
    assert queries.fallback_rate(dashboards.RATE) in dash_text


# --- autoscaling and recommendations ---------------------------------------------------------


def _panels(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["title"]: panel for panel in board["panels"]}


def test_the_optional_panels_appear_only_when_their_feature_is_on() -> None:
    plain = dashboards.all_dashboards()
    dev = stack_config("dev")
    assert dev.autoscaled_models == [] and not dev.vpa.enabled
    assert (
        dashboards.all_dashboards(
            scaled=dashboards.scaled_servers(dev), recommendations=dev.vpa.enabled
        )
        == plain
    )
    scaled = _panels(_prod_dashboards()["llm-traffic"])
    assert set(scaled) - set(_panels(plain["llm-traffic"])) == {
        "Autoscaled model servers: replicas",
        "GPU-hours saved by scaling down (time range)",
        "GPU cost saved by scaling down, USD (time range)",
    }


def test_savings_are_priced_with_the_gpu_class_cost() -> None:
    config = stack_config("prod")
    (server,) = dashboards.scaled_servers(config)
    model = config.inference.models[server.model]
    assert model.autoscaling is not None and model.gpu_class is not None
    assert (server.max_replicas, server.gpus) == (model.autoscaling.max, model.gpu_count)
    cost = config.cluster.gpu_classes[model.gpu_class].hourly_cost_usd
    assert server.gpu_hourly_cost_usd == cost > 0
    panels = _panels(_prod_dashboards()["llm-traffic"])
    (hours,) = panels["GPU-hours saved by scaling down (time range)"]["targets"]
    (usd,) = panels["GPU cost saved by scaling down, USD (time range)"]["targets"]
    assert usd["expr"] == f"({hours['expr']}) * {cost:g}"
    # One replica of `max` idle for the whole range is max x GPUs x the range's hours.
    assert f"({server.max_replicas} - max(kube_deployment_spec_replicas" in hours["expr"]
    assert f"* {server.gpus})[$__range:1m]) / 60" in hours["expr"]
    assert f'deployment="{server.deployment}"' in hours["expr"]


def test_the_resources_dashboard_sets_requests_beside_recommendations() -> None:
    board = _prod_dashboards()["llm-resources"]
    for panel in board["panels"]:
        names = {n for t in panel["targets"] for n in _selected_names(t["expr"])}
        assert names == {
            "kube_pod_container_resource_requests",
            dashboards.VPA_RECOMMENDATION,
        }
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "namespace"]

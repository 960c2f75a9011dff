"""PromQL shared by the dashboards and the alert rules, so a panel shows what an alert fires on.

Pure functions returning PromQL text. `window` is a range such as `5m` (rules) or Grafana's
`$__rate_interval` (dashboards). Every metric name used here is in `metrics`.
"""

from __future__ import annotations

from components.inference.endpoints import INFERENCE_NAMESPACE

GATEWAY_TRAEFIK_SERVICE = "llm-gateway-litellm-.*"
"""Traefik names an IngressRoute's backend `<namespace>-<service>-<port>@kubernetescrd`."""

MODEL_SERVICES = "vllm-.*|lan-.*"
"""Services of in-cluster model servers and of LAN GPU hosts (`inference.endpoints`)."""


def fallback_rate(window: str) -> str:
    """Share of gateway requests answered by a fallback model (0..1)."""
    fallbacks = (
        f"sum(rate(litellm_deployment_successful_fallbacks_total[{window}]))"
        f" + sum(rate(litellm_deployment_failed_fallbacks_total[{window}]))"
    )
    requests = f"sum(rate(litellm_proxy_total_requests_metric_total[{window}]))"
    return f"({fallbacks}) / ({requests} > 0)"


def ttft_quantile(quantile: float, window: str, model_filter: str = "") -> str:
    """Time to first token at a quantile, per served model, from vLLM's histogram."""
    selector = f"vllm:time_to_first_token_seconds_bucket{model_filter}"
    return f"histogram_quantile({quantile}, sum by (le, model_name) (rate({selector}[{window}])))"


def inter_token_quantile(quantile: float, window: str, model_filter: str = "") -> str:
    """Inter-token latency at a quantile, per served model."""
    selector = f"vllm:inter_token_latency_seconds_bucket{model_filter}"
    return f"histogram_quantile({quantile}, sum by (le, model_name) (rate({selector}[{window}])))"


def gateway_status_rate(code_class: str, window: str) -> str:
    """Requests per second through Traefik to LiteLLM with a status class (`4`, `5`)."""
    return (
        "sum(rate(traefik_service_requests_total"
        f'{{service=~"{GATEWAY_TRAEFIK_SERVICE}", code=~"{code_class}.."}}[{window}]))'
    )


def gateway_5xx_ratio(window: str) -> str:
    """Share of gateway requests answered 5xx (0..1)."""
    total = (
        "sum(rate(traefik_service_requests_total"
        f'{{service=~"{GATEWAY_TRAEFIK_SERVICE}"}}[{window}]))'
    )
    return f"{gateway_status_rate('5', window)} / ({total} > 0)"


def gpu_memory_fraction() -> str:
    """Framebuffer memory in use per GPU (0..1); used + free + reserved is the total."""
    return (
        "DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE"
        " + DCGM_FI_DEV_FB_RESERVED)"
    )


def certificate_seconds_left() -> str:
    """Seconds until each issued certificate expires (unissued ones report 0: left out)."""
    return "(certmanager_certificate_expiration_timestamp_seconds > 0) - time()"


def backup_age_seconds() -> str:
    """Age of the newest available Postgres backup per namespace (Barman Cloud plugin)."""
    return (
        "time() - max by (namespace) "
        "(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp)"
    )


def model_server_down() -> str:
    """Model servers that should run but have no ready replica, or fail their scrape."""
    ns = INFERENCE_NAMESPACE
    wanted = f'kube_deployment_spec_replicas{{namespace="{ns}", deployment=~"vllm-.*"}} > 0'
    ready = f'kube_deployment_status_replicas_available{{namespace="{ns}"}} > 0'
    scrape = f'up{{namespace="{ns}", service=~"{MODEL_SERVICES}"}} == 0'
    return f"({wanted} unless on (namespace, deployment) ({ready})) or ({scrape})"

"""The platform's alerts as `PrometheusRule` groups (pure), each with a runbook annotation.

Alerts: a model server down, the fallback rate above its threshold for 10 minutes, p95
time to first token above its threshold, GPU memory near full, a certificate expiring
within 14 days, the newest Postgres backup older than a day (only where backups exist),
and the gateway's 5xx share above its threshold. Thresholds come from
`observability.alerts` in the stack config; expressions come from `queries`, the same
PromQL the dashboards plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config.addons import AlertThresholds

from . import queries

CERTIFICATE_WARNING_DAYS = 14
BACKUP_MAX_AGE_SECONDS = 86_400
RULE_WINDOW = "5m"


@dataclass(frozen=True, kw_only=True, slots=True)
class Alert:
    """One alerting rule and what to do about it."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    runbook: str

    def rule(self) -> dict[str, Any]:
        """The rule as the Prometheus Operator's CRD spells it."""
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "platform": "llm-platform"},
            "annotations": {"summary": self.summary, "runbook": self.runbook},
        }


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def platform_alerts(thresholds: AlertThresholds, *, postgres_backups: bool) -> tuple[Alert, ...]:
    """Every alert of the platform, thresholds from config (pure)."""
    alerts = [
        Alert(
            name="ModelServerDown",
            expr=queries.model_server_down(),
            for_="5m",
            severity="critical",
            summary="Model server {{ $labels.deployment }}{{ $labels.service }} in "
            "{{ $labels.namespace }} has no ready replica or fails its scrape.",
            runbook=(
                "1. kubectl -n inference get pods -l app.kubernetes.io/component=model-server; "
                "describe the failing pod (Pending: GPU taken or node down; CrashLoop: read "
                "the vLLM log, usually out of GPU memory or a failed weights download). "
                "2. Traffic for its model is going to the cloud fallback meanwhile: watch "
                "the fallback rate and spend. 3. For planned work set the GPU class to "
                "maintenance in the stack config instead (scales it to zero, no alert)."
            ),
        ),
        Alert(
            name="FallbackRateHigh",
            expr=f"{queries.fallback_rate(RULE_WINDOW)} > {thresholds.fallback_rate:g}",
            for_="10m",
            severity="warning",
            summary="More than "
            f"{_percent(thresholds.fallback_rate)} of gateway requests went to a fallback "
            "model for 10 minutes.",
            runbook=(
                "1. Open the 'LLM platform: traffic' dashboard: which requested_model falls "
                "back? 2. Check its model server (ModelServerDown, queue length and KV cache "
                "on 'model servers'); LiteLLM cools a deployment down after failures "
                "(litellm_deployment_cooled_down_total). 3. Cloud spend rises while this "
                "lasts: check budgets."
            ),
        ),
        Alert(
            name="TimeToFirstTokenSlow",
            expr=f"{queries.ttft_quantile(0.95, RULE_WINDOW)} > {thresholds.ttft_p95_seconds:g}",
            for_="10m",
            severity="warning",
            summary="p95 time to first token of {{ $labels.model_name }} is above "
            f"{thresholds.ttft_p95_seconds:g}s.",
            runbook=(
                "1. On 'model servers' look at the queue length and KV-cache usage of the "
                "model: a full cache or a long queue means more load than the server takes "
                "(add a replica, lower max sequences, or let the gateway fall back sooner). "
                "2. Preemptions above zero mean the cache is too small for the context "
                "lengths in use. 3. Long prompts raise TTFT by themselves: compare tokens in."
            ),
        ),
        Alert(
            name="GpuMemoryNearFull",
            expr=f"{queries.gpu_memory_fraction()} > {thresholds.gpu_memory_fraction:g}",
            for_="10m",
            severity="warning",
            summary="GPU {{ $labels.gpu }} on {{ $labels.Hostname }} uses more than "
            f"{_percent(thresholds.gpu_memory_fraction)} of its memory.",
            runbook=(
                "vLLM reserves its gpu_memory_utilization share up front, so memory above "
                "that share comes from something else on the GPU. 1. nvidia-smi on the node: "
                "which processes hold memory (a second server on a time-sliced GPU, the "
                "embeddings server, a stuck process)? 2. Move a model to another GPU class "
                "or lower its memory share in the stack config."
            ),
        ),
        Alert(
            name="CertificateExpiringSoon",
            expr=f"{queries.certificate_seconds_left()} < {CERTIFICATE_WARNING_DAYS} * 86400",
            for_="1h",
            severity="warning",
            summary="Certificate {{ $labels.namespace }}/{{ $labels.name }} expires within "
            f"{CERTIFICATE_WARNING_DAYS} days and has not been renewed.",
            runbook=(
                "cert-manager renews 30 days before expiry, so this means renewal is failing. "
                "1. kubectl -n <namespace> describe certificate <name>, then the newest "
                "CertificateRequest. 2. Check the issuer: kubectl get clusterissuers (the "
                "internal CA must be Ready). 3. cert-manager controller logs."
            ),
        ),
        Alert(
            name="GatewayErrorRateHigh",
            expr=f"{queries.gateway_5xx_ratio(RULE_WINDOW)} > {thresholds.gateway_5xx_rate:g}",
            for_="5m",
            severity="critical",
            summary="More than "
            f"{_percent(thresholds.gateway_5xx_rate)} of gateway requests answer 5xx.",
            runbook=(
                "1. 502/503 from Traefik: no ready LiteLLM pod (kubectl -n llm-gateway get "
                "pods). 2. 500 from LiteLLM: its log names the upstream error; check the "
                "database (Postgres cluster litellm-db Ready?) and Redis. 3. If every "
                "upstream fails, both local servers and the cloud fallback are down: see "
                "ModelServerDown and the provider's status page."
            ),
        ),
    ]
    if postgres_backups:
        alerts.append(
            Alert(
                name="PostgresBackupTooOld",
                expr=f"({queries.backup_age_seconds()} > {BACKUP_MAX_AGE_SECONDS}) or "
                "absent(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp)",
                for_="1h",
                severity="warning",
                summary="The newest Postgres backup in {{ $labels.namespace }} is older "
                "than a day (or none is reported).",
                runbook=(
                    "1. kubectl -n llm-gateway get backups,scheduledbackups: did the last "
                    "one fail? 2. kubectl -n llm-gateway describe objectstore: credentials "
                    "and bucket. 3. Logs of the plugin-barman-cloud sidecar in the primary "
                    "pod. 4. Run one now: kubectl cnpg backup litellm-db --method plugin "
                    "--plugin-name barman-cloud.cloudnative-pg.io."
                ),
            )
        )
    return tuple(alerts)


def rule_groups(thresholds: AlertThresholds, *, postgres_backups: bool) -> list[dict[str, Any]]:
    """`PrometheusRule.spec.groups` of the platform."""
    return [
        {
            "name": "llm-platform",
            "rules": [
                a.rule() for a in platform_alerts(thresholds, postgres_backups=postgres_backups)
            ],
        }
    ]

"""The opening section of a render's `summary.md`: what a stack gives its users and what it
asks of them, read from the validated config and the program's outputs (pure).

Models and where they run, the endpoints, the clients and their limits, the secrets to set
(and which the stack file already holds), the versions that will run, and what the AWS part
costs a month at list prices (`AWS_PRICES`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components import versions
from components.config import PlatformConfig
from components.inference.deadlines import served_context
from tools.releases import ReleaseRender

HOURS_PER_MONTH = 730
"""AWS's own month for monthly figures (365 x 24 / 12)."""


@dataclass(frozen=True)
class AwsPrices:
    """List prices of what the stack runs on AWS, with where and when they were read."""

    source: str
    region: str
    instance_hourly_usd: Mapping[str, float]
    gp3_gib_month_usd: float
    public_ipv4_hourly_usd: float
    kms_key_month_usd: float


AWS_PRICES = AwsPrices(
    source=(
        "us-east-1 On-Demand list prices kept in `tools/what_you_get.py` (`AWS_PRICES`), from "
        "aws.amazon.com/ec2/pricing/on-demand/ (Linux), aws.amazon.com/ebs/pricing/ (gp3), "
        "aws.amazon.com/vpc/pricing/ (public IPv4, charged since 2024-02-01) and "
        "aws.amazon.com/kms/pricing/ (a customer managed key)"
    ),
    region="us-east-1",
    instance_hourly_usd={
        "t4g.nano": 0.0042,
        "t4g.micro": 0.0084,
        "t4g.small": 0.0168,
        "t4g.medium": 0.0336,
        "t4g.large": 0.0672,
        "t3.micro": 0.0104,
        "t3.small": 0.0208,
        "t3.medium": 0.0416,
        "t3.large": 0.0832,
    },
    gp3_gib_month_usd=0.08,
    public_ipv4_hourly_usd=0.005,
    kms_key_month_usd=1.0,
)


@dataclass(frozen=True)
class CostLine:
    """One priced item of the monthly estimate (None: no list price known here)."""

    item: str
    monthly_usd: float | None


def aws_monthly_estimate(config: PlatformConfig, prices: AwsPrices = AWS_PRICES) -> list[CostLine]:
    """The fixed monthly cost of the edge at list prices; usage-priced items (traffic, S3
    storage and requests, logs) are not estimated."""
    edge = config.edge
    if not config.edge_enabled or edge is None:
        return []
    hourly = prices.instance_hourly_usd.get(edge.instance_type)
    return [
        CostLine(
            f"EC2 `{edge.instance_type}`, always on",
            None if hourly is None else hourly * HOURS_PER_MONTH,
        ),
        CostLine(
            f"EBS gp3 root volume, {edge.root_volume_gib} GiB",
            edge.root_volume_gib * prices.gp3_gib_month_usd,
        ),
        CostLine("Elastic IP (public IPv4)", prices.public_ipv4_hourly_usd * HOURS_PER_MONTH),
        CostLine("KMS key of the edge's parameters", prices.kms_key_month_usd),
    ]


def _usd(value: float | None) -> str:
    return "no list price here" if value is None else f"${value:,.2f}"


def _models(config: PlatformConfig) -> list[str]:
    lines = ["| model | runs on | context served / asked | cloud fallback |"]
    lines.append("| --- | --- | --- | --- |")
    for name, model in sorted(config.inference.models.items()):
        if model.placement == "lan":
            where = f"LAN host `{model.lan_host}`"
        else:
            where = f"cluster, GPU class `{model.gpu_class}` x {model.gpu_count}"
        if config.model_in_maintenance(name):
            where += " (in maintenance: served by its fallback)"
        context = f"{served_context(config, name)} / {model.context_length}"
        lines.append(f"| `{name}` | {where} | {context} | {model.cloud_fallback or 'none'} |")
    for name, cloud in sorted(config.llm_gateway.cloud_models.items()):
        lines.append(f"| `{name}` | cloud, `{cloud.provider_model}` | {cloud.context_window} | - |")
    return lines


def _endpoints(outputs: Mapping[str, Any]) -> list[str]:
    named = (
        ("API (clients)", "api_base_url"),
        ("API inside the cluster", "internal_api_base_url"),
        ("Grafana", "grafana_url"),
        ("Vector database", "vector_db_url"),
    )
    return [f"- {label}: `{outputs[key]}`" for label, key in named if outputs.get(key)]


def _clients(config: PlatformConfig) -> list[str]:
    if not config.clients:
        return ["No clients are configured: nobody can call the API through the edge."]
    lines = ["| client | requests/s (burst) | budget | models |", "| --- | --- | --- | --- |"]
    for name, client in sorted(config.clients.items()):
        models = ", ".join(f"`{m}`" for m in client.models) or "all"
        lines.append(
            f"| `{name}` | {client.requests_per_second:g} ({client.burst}) | "
            f"${client.max_budget_usd:g} per {client.budget_duration} | {models} |"
        )
    return lines


def _secrets(config: PlatformConfig, secrets_set: Collection[str]) -> list[str]:
    lines = []
    for key in config.required_secrets():
        if key in secrets_set:
            state = "set (encrypted in the stack file)"
        else:
            state = f"**not set**: `pulumi config set --secret {key} <value>`"
        lines.append(f"- `{key}`: {state}")
    return lines


def _versions(config: PlatformConfig, releases: Sequence[ReleaseRender]) -> list[str]:
    lines = [f"- k3s `{versions.K3S_VERSION}`"] if config.cluster.mode == "bootstrap" else []
    lines += [
        f"- chart `{r.chart.name}` {r.chart.version} (release `{r.release}`)" for r in releases
    ]
    lines += [f"- image `{image.repository}:{image.tag}`" for image in versions.IMAGES]
    return lines


def what_you_get_markdown(
    config: PlatformConfig,
    outputs: Mapping[str, Any],
    releases: Sequence[ReleaseRender] = (),
    secrets_set: Collection[str] = (),
) -> list[str]:
    """The "what you get" section, as Markdown lines."""
    lines = ["## What you get", "", f"Tier `{config.environment}`.", "", "### Models", ""]
    lines += _models(config)
    lines += ["", "### Endpoints", "", *_endpoints(outputs), "", "### Clients", ""]
    lines += _clients(config)
    lines += ["", "### Secrets the stack needs", "", *_secrets(config, secrets_set)]
    costs = aws_monthly_estimate(config)
    if costs:
        total = sum(line.monthly_usd or 0.0 for line in costs)
        lines += ["", "### AWS, per month at list prices", ""]
        lines += ["| item | per month |", "| --- | ---: |"]
        lines += [f"| {line.item} | {_usd(line.monthly_usd)} |" for line in costs]
        lines += [f"| **fixed total** | **{_usd(total)}** |", ""]
        lines.append(
            f"Prices: {AWS_PRICES.source}. The stack's region is `{config.aws.region}`: re-check "
            "its prices before relying on the total. Not estimated: data transfer, S3 storage "
            "and requests, flow and access logs (all by usage)."
        )
    lines += ["", "### Versions", "", *_versions(config, releases), ""]
    return lines

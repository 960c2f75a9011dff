"""`summary.md` opens with what the stack gives and asks: models and where they run,
endpoints, clients and limits, the secrets to set and which are set, the AWS monthly cost
at list prices, the versions; its diagram shows only what is switched on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components import versions
from components.config import parse_platform_config
from components.inference.deadlines import served_context
from tests.support import ROOT, stack_config, stack_values
from tools.render import main as render_main
from tools.what_you_get import AWS_PRICES, HOURS_PER_MONTH, aws_monthly_estimate


def _render(tmp_path: Path, stack_file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    out = tmp_path / "out"
    code = render_main(["--config", str(stack_file), "--out", str(out), "--no-charts"])
    capsys.readouterr()
    assert code == 0
    return (out / "summary.md").read_text()


def _section(summary: str, title: str) -> list[str]:
    lines = summary.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line]


@pytest.fixture(scope="module")
def prod_summary(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("prod")
    out = tmp / "out"
    assert render_main(["--stack", "prod", "--out", str(out), "--no-charts"]) == 0
    return (out / "summary.md").read_text()


def test_models_say_where_they_run_and_the_context_they_serve(prod_summary: str) -> None:
    config = stack_config("prod")
    rows = _section(prod_summary, "### Models")[2:]
    assert len(rows) == len(config.inference.models) + len(config.llm_gateway.cloud_models)
    for name, model in config.inference.models.items():
        (row,) = [r for r in rows if r.startswith(f"| `{name}` |")]
        where = f"LAN host `{model.lan_host}`" if model.placement == "lan" else model.gpu_class
        assert str(where) in row
        assert f"| {served_context(config, name)} / {model.context_length} |" in row
        assert row.endswith(f"| {model.cloud_fallback} |")


def test_endpoints_clients_and_versions_come_from_the_stack(prod_summary: str) -> None:
    config = stack_config("prod")
    endpoints = "\n".join(_section(prod_summary, "### Endpoints"))
    assert config.edge is not None
    assert f"- API (clients): `https://{config.edge.domain}/v1`" in endpoints
    assert "- Grafana: `https://grafana." in endpoints
    clients = _section(prod_summary, "### Clients")[2:]
    assert sorted(r.split("`")[1] for r in clients) == sorted(config.clients)
    for name, client in config.clients.items():
        (row,) = [r for r in clients if r.startswith(f"| `{name}` |")]
        assert f"{client.requests_per_second:g} ({client.burst})" in row
        assert f"${client.max_budget_usd:g} per {client.budget_duration}" in row
    listed = "\n".join(_section(prod_summary, "### Versions"))
    assert f"k3s `{versions.K3S_VERSION}`" in listed
    assert all(f"{i.repository}:{i.tag}" in listed for i in versions.IMAGES)


def test_secrets_say_which_the_stack_file_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-platform:anthropic_api_key"] = {"secure": "v1:AAAAbase64cipher"}
    path = tmp_path / "Pulumi.mine.yaml"
    path.write_text(yaml.safe_dump(document))
    lines = _section(_render(tmp_path, path, capsys), "### Secrets the stack needs")
    assert sorted(line.split("`")[1] for line in lines) == sorted(
        stack_config("dev").required_secrets()
    )
    (anthropic,) = [line for line in lines if "`anthropic_api_key`" in line]
    assert "set (encrypted in the stack file)" in anthropic
    (kubeconfig,) = [line for line in lines if "`kubeconfig`" in line]
    assert "**not set**: `pulumi config set --secret kubeconfig <value>`" in kubeconfig


def test_the_aws_estimate_prices_the_edge_it_deploys() -> None:
    config = stack_config("prod")
    assert config.edge is not None
    lines = {line.item: line.monthly_usd for line in aws_monthly_estimate(config)}
    instance = AWS_PRICES.instance_hourly_usd[config.edge.instance_type] * HOURS_PER_MONTH
    assert lines[f"EC2 `{config.edge.instance_type}`, always on"] == pytest.approx(instance)
    volume = f"EBS gp3 root volume, {config.edge.root_volume_gib} GiB"
    assert lines[volume] == pytest.approx(config.edge.root_volume_gib * 0.08)
    assert lines["Elastic IP (public IPv4)"] == pytest.approx(0.005 * 730)
    # An instance type with no list price here is said so, not priced at zero.
    values = stack_values("prod")
    values["edge"]["instance_type"] = "c7gn.metal"
    other = {
        line.item: line.monthly_usd for line in aws_monthly_estimate(parse_platform_config(values))
    }
    assert other["EC2 `c7gn.metal`, always on"] is None
    # No edge, nothing on AWS to price.
    values["edge"]["enabled"] = False
    assert aws_monthly_estimate(parse_platform_config(values)) == []


def test_the_diagram_shows_only_what_is_switched_on(
    prod_summary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = _render(tmp_path, ROOT / "Pulumi.dev.yaml", capsys)
    assert not stack_config("dev").data.enabled and stack_config("prod").data.enabled
    diagram = dev[dev.index("```mermaid") :]
    assert "llm-data" not in diagram
    assert "llm-data" in prod_summary[prod_summary.index("```mermaid") :]

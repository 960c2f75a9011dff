"""The offline render: both stacks, determinism, no secrets, schema-valid manifests, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support import ROOT, STACKS, stack_config
from tests.unit.manifest_checks import validate_against_crd
from tools.diff import diff_markdown
from tools.diff import main as diff_main
from tools.render import main as render_main

CORE_GROUPS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "networking.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "autoscaling/v2",
    "node.k8s.io/v1",
    "storage.k8s.io/v1",
    "discovery.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "admissionregistration.k8s.io/v1",
}


@pytest.fixture(scope="module")
def renders(rendered_stack: Callable[[str], Path]) -> dict[str, Path]:
    return {stack: rendered_stack(stack) for stack in STACKS}


def _manifests(render: Path) -> list[tuple[Path, dict]]:
    """Rendered objects; a payload redacted as a whole becomes a placeholder map, so the
    schema checks the object's structure and never needs the secret."""
    found = []
    for path in sorted((render / "manifests").rglob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        for key in ("data", "stringData"):
            if manifest.get(key) == "[secret]":
                manifest[key] = {"redacted": "x"}
        found.append((path, manifest))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_render_writes_the_documented_layout(renders: dict[str, Path], stack: str) -> None:
    render = renders[stack]
    plan = json.loads((render / "plan.json").read_text())
    assert plan["stack"] == stack
    assert len(plan["resources"]) > 20
    for entry in plan["resources"]:
        assert {"type", "name", "parent", "provider", "dependsOn", "protect", "inputs"} <= set(
            entry
        )
    assert _manifests(render)
    outputs = json.loads((render / "outputs.json").read_text())
    assert outputs["environment"] == stack
    assert outputs["kubeconfig"] == "[secret]"
    summary = (render / "summary.md").read_text()
    assert "```mermaid" in summary
    assert f"{len(plan['resources'])} resources." in summary


def test_render_is_deterministic(renders: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert render_main(["--stack", "prod", "--out", str(again)]) == 0
    first = {
        p.relative_to(renders["prod"]): p.read_bytes()
        for p in renders["prod"].rglob("*")
        if p.is_file()
    }
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_reaches_the_render(renders: dict[str, Path], stack: str) -> None:
    texts = [p.read_text() for p in renders[stack].rglob("*") if p.is_file()]
    assert texts
    for key in stack_config(stack).required_secrets():
        assert not any(f"render-placeholder-{key}" in text for text in texts), key
    assert any("[secret]" in text for text in texts)


@pytest.mark.parametrize("stack", STACKS)
def test_core_manifests_pass_kubernetes_validate_strict(
    renders: dict[str, Path], stack: str
) -> None:
    version = stack_config(stack).cluster.kubernetes_version + ".0"
    core = [(p, m) for p, m in _manifests(renders[stack]) if m["apiVersion"] in CORE_GROUPS]
    assert core
    for _path, manifest in core:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_validator_rejects_a_broken_manifest() -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hardd": {"pods": "1"}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.33.0", strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_match_their_crd_schemas(renders: dict[str, Path], stack: str) -> None:
    custom = [(p, m) for p, m in _manifests(renders[stack]) if m["apiVersion"] not in CORE_GROUPS]
    for path, manifest in custom:
        validate_against_crd(manifest, str(path))


def test_dev_has_observability_and_no_data_layer_and_prod_has_both(
    renders: dict[str, Path],
) -> None:
    def kinds(stack: str, namespace: str) -> set[str]:
        return {
            m["kind"]
            for _, m in _manifests(renders[stack])
            if m["metadata"].get("namespace") == namespace
        }

    def outputs(stack: str) -> dict[str, object]:
        loaded: dict[str, object] = json.loads((renders[stack] / "outputs.json").read_text())
        return loaded

    monitoring = {"PrometheusRule", "ServiceMonitor", "PodMonitor", "ConfigMap", "IngressRoute"}
    for stack in STACKS:
        assert monitoring <= kinds(stack, "observability"), stack
        assert (renders[stack] / "helm" / "monitoring.yaml").exists()
        assert str(outputs(stack)["grafana_url"]).startswith("https://grafana.")
    assert kinds("dev", "data") == set()
    assert not (renders["dev"] / "helm" / "qdrant.yaml").exists()
    assert outputs("dev")["vector_db_url"] is None
    assert {"Deployment", "Service", "CronJob", "NetworkPolicy"} <= kinds("prod", "data")
    assert (renders["prod"] / "helm" / "qdrant.yaml").exists()
    assert outputs("prod")["embeddings_model"] == "bge-m3"
    assert outputs("prod")["vector_db_url"] == "http://qdrant.data.svc.cluster.local:6333"
    assert outputs("prod")["vector_db_api_key_secret"] == "data/qdrant-api-key"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.render", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _broken_stack(tmp_path: Path, mutate: dict) -> Path:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"].update(mutate)
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_invalid_config_exits_2_with_field_lines_and_no_traceback(tmp_path: Path) -> None:
    path = _broken_stack(
        tmp_path,
        {
            "llm-platform:llm_gateway": {"replicas": "two", "colour": "blue"},
            "llm-platform:edge": {
                "wireguard": {"home_public_cidr": "203.0.113.10/32"},
                "max_body_mib": 100000,
            },
        },
    )
    result = _run_cli("--stack", "dev", "--config", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert sorted(line.split(": ", 2)[1] for line in lines) == [
        "edge.max_body_mib",
        "llm_gateway.colour",
        "llm_gateway.replicas",
    ]
    assert all(line.startswith("config error: ") for line in lines)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_top_level_key_exits_2(tmp_path: Path) -> None:
    path = _broken_stack(tmp_path, {"llm-platform:observabilty": {"enabled": False}})
    result = _run_cli("--stack", "dev", "--config", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("config error: observabilty: unknown key")


def test_other_failures_exit_1(tmp_path: Path) -> None:
    result = _run_cli("--stack", "dev", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1
    assert "cannot read stack file" in result.stderr


def test_render_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert render_main(["--stack", "dev", "--out", str(tmp_path)]) == 1
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_diff_of_a_changed_quota_shows_that_one_change(
    renders: dict[str, Path], tmp_path: Path
) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-platform:namespaces"]["inference"]["quota"]["requests_cpu"] = "12"
    changed_file = tmp_path / "Pulumi.dev.yaml"
    changed_file.write_text(yaml.safe_dump(document))
    new = tmp_path / "new"
    assert render_main(["--stack", "dev", "--config", str(changed_file), "--out", str(new)]) == 0
    report = diff_markdown(renders["dev"], new)
    assert "0 to add, 1 to change, 0 to remove, 0 generated files changed." in report
    assert "`llm-base-quota-inference`" in report
    assert '| `inputs.spec.hard.requests.cpu` | "8" | "12" |' in report
    assert diff_markdown(renders["dev"], renders["dev"]).strip().endswith("No changes.")


def test_diff_of_a_values_change_shows_the_chart_objects_it_changes(
    renders: dict[str, Path], tmp_path: Path
) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-platform:observability"]["retention_days"] = 5
    changed_file = tmp_path / "Pulumi.dev.yaml"
    changed_file.write_text(yaml.safe_dump(document))
    new = tmp_path / "new"
    assert render_main(["--stack", "dev", "--config", str(changed_file), "--out", str(new)]) == 0
    report = diff_markdown(renders["dev"], new)
    # the release's values change, and so does the Prometheus object the chart makes
    assert "`inputs.values.prometheus.prometheusSpec.retention`" in report
    assert "Chart objects: 0 to add, 1 to change, 0 to remove." in report
    assert "#### `monitoring/prometheus-kps-prometheus.yaml`" in report
    assert '| `spec.retention` | "3d" | "5d" |' in report


def _dev_with(tmp_path: Path, change: Any) -> tuple[Path, Path, Path]:
    """Renders (without charts) of dev and of dev changed by `change`, and the changed
    stack file."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    change(document["config"])
    changed_file = tmp_path / "changed" / "Pulumi.dev.yaml"
    changed_file.parent.mkdir()
    changed_file.write_text(yaml.safe_dump(document, sort_keys=False))
    old, new = tmp_path / "old", tmp_path / "new"
    assert render_main(["--stack", "dev", "--no-charts", "--out", str(old)]) == 0
    args = ["--stack", "dev", "--config", str(changed_file), "--no-charts", "--out", str(new)]
    assert render_main(args) == 0
    return old, new, changed_file


def test_a_client_rate_limit_change_reloads_the_edge_and_replaces_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client's limit reaches the edge through its client-config parameter (read by the
    key refresh, which reloads nginx): the instance and its user-data stay as they are."""

    def faster(config: dict[str, Any]) -> None:
        config["llm-platform:clients"]["dev-laptop"]["requests_per_second"] = 7

    old, new, changed_file = _dev_with(tmp_path, faster)
    assert diff_main([str(old), str(new), "--config", str(changed_file)]) == 0
    report = capsys.readouterr().out
    top = report.split("### Changed")[0]
    assert "No resource is replaced." in top
    assert "0 to create, 3 to update, 0 to replace (0 deleted first)" in top
    assert "`llm-edge-instance`" not in report
    assert (old / "files/edge/cloud-init.yaml").read_text() == (
        new / "files/edge/cloud-init.yaml"
    ).read_text()
    changed = report.split("### Changed")[1]
    assert "#### `aws:ssm/parameter:Parameter` `llm-edge-param-client-config`" in changed
    # The change itself, readable in the client file the parameter carries.
    clients_file = report.split("<code>edge/clients-http.conf</code>")[1].split("</details>")[0]
    assert "-limit_req_zone $edge_rl_dev_laptop zone=edge_client_dev-laptop:64k rate=5r/s;" in (
        clients_file
    )
    assert "+limit_req_zone $edge_rl_dev_laptop zone=edge_client_dev-laptop:64k rate=7r/s;" in (
        clients_file
    )
    # The virtual key's own limit is an update in place.
    assert "| `inputs.rpm_limit` | 310 | 430 |" in report


def test_a_user_data_change_is_shown_decoded_with_the_edge_replacement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What does change the user-data (here the upload limit of nginx.conf) replaces the
    instance, deleted first; the diff says so at the top and shows the change decoded."""

    def bigger_bodies(config: dict[str, Any]) -> None:
        config["llm-platform:edge"]["max_body_mib"] = 20

    old, new, changed_file = _dev_with(tmp_path, bigger_bodies)
    assert diff_main([str(old), str(new), "--config", str(changed_file)]) == 0
    report = capsys.readouterr().out
    top = report.split("### Changed")[0]
    assert "**Deleted before it is replaced (down in between): `llm-edge-instance`.**" in top
    assert (
        "| `aws:ec2/instance:Instance` `llm-edge-instance` | **deletes it first**, then creates "
        "the new one (down in between) | `userDataBase64` |"
    ) in top
    section = report.split("#### `aws:ec2/instance:Instance` `llm-edge-instance`")[1]
    section = section.split("####")[0]
    assert "<code>inputs.userDataBase64</code> (base64 of gzip, decoded)" in section
    assert f"-        client_max_body_size {10 * 1024 * 1024};" in section
    assert f"+        client_max_body_size {20 * 1024 * 1024};" in section
    assert "| `inputs.userDataBase64` |" not in section


def test_a_maintenance_diff_says_why_budgets_and_replicas_changed(tmp_path: Path) -> None:
    def maintenance(config: dict[str, Any]) -> None:
        config["llm-platform:cluster"]["gpu_classes"]["rtx-3060"]["maintenance"] = True

    old, new, _ = _dev_with(tmp_path, maintenance)
    report = diff_markdown(old, new)
    derived = report.split("### Derived by the program")[1].split("###")[0]
    assert (
        "- client `dev-laptop`: max budget (USD): 20.0 -> 5.0 (config says 20.0). Because: GPU "
        "maintenance: `qwen3-4b` served by the cloud fallback"
    ) in derived
    assert (
        "- model `qwen3-4b`: replicas: 1 -> 0 (config says 1). Because: GPU class `rtx-3060` is in maintenance"
        in derived
    )
    assert "| `inputs.spec.replicas` | 1 | 0 (derived: model `qwen3-4b`: replicas) |" in report
    assert (
        "| `inputs.max_budget` | 20 | 5 (derived: client `dev-laptop`: max budget (USD)) |"
        in report
    )

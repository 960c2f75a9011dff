"""The observability stack under the recording mocks: per environment, switched off, schemas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components import versions
from components.cluster.gpu import RUNTIME_CLASS
from components.config import parse_platform_config
from components.observability import values as obs_values
from components.observability.stack import Observability, ObservabilityArgs
from tests.support import dependency_names, run_program, stack_config, stack_values
from tests.unit.manifest_checks import (
    validate_core,
    validate_custom_resource,
)
from tools.mock_engine import ProgramRun, config_for_engine

RELEASE = "kubernetes:helm.sh/v3:Release"
_RUNS: dict[tuple[str, bool], ProgramRun] = {}


def _program(stack: str, enabled: bool) -> Callable[[], dict[str, Any]]:
    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        from components.ingress.publish import IngressHandle

        config = stack_config(stack)
        if not enabled:
            config = config.model_copy(
                update={"observability": config.observability.model_copy(update={"enabled": False})}
            )
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        handle = IngressHandle(domain=config.ingress.domain, issuer_name="ca", provider=provider)
        obs = Observability(
            "obs", ObservabilityArgs(config=config, provider=provider, ingress=handle)
        )
        return {"obs": obs}

    return program


def obs_run(stack: str, enabled: bool = True) -> ProgramRun:
    key = (stack, enabled)
    if key not in _RUNS:
        _RUNS[key] = run_program(
            stack=stack,
            config=config_for_engine(stack_values(stack)),
            secret_keys=[],
            program=_program(stack, enabled),
        )
    return _RUNS[key]


def _custom(run: ProgramRun) -> list[Any]:
    return [
        r
        for r in run.resources
        if r.custom
        and r.type.startswith("kubernetes:")
        and "helm.sh" not in r.type
        and not r.type.startswith(("kubernetes:core/", "kubernetes:apps/"))
        and r.type != "pulumi:providers:kubernetes"
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nothing_is_deployed_when_switched_off(stack: str) -> None:
    run = obs_run(stack, enabled=False)
    assert [r.type for r in run.resources if r.custom and "providers" not in r.type] == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_release_is_pinned_with_documented_values(stack: str) -> None:
    release = obs_run(stack).named("obs-kube-prometheus-stack")
    chart = versions.KUBE_PROMETHEUS_STACK
    assert (release.inputs["chart"], release.inputs["version"]) == (chart.name, chart.version)
    assert release.inputs["repositoryOpts"] == {"repo": chart.repo}
    assert release.inputs["namespace"] == "observability"


def test_retention_and_storage_come_from_config() -> None:
    for stack in ("dev", "prod"):
        config = stack_config(stack).observability
        spec = (
            obs_run(stack)
            .named("obs-kube-prometheus-stack")
            .inputs["values"]["prometheus"]["prometheusSpec"]
        )
        assert spec["retention"] == f"{config.retention_days}d"
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert claim["resources"]["requests"]["storage"] == f"{config.storage_gib}Gi"
        assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False


def test_prod_persists_grafana_and_alertmanager_and_dev_does_not() -> None:
    dev = obs_run("dev").named("obs-kube-prometheus-stack").inputs["values"]
    prod = obs_run("prod").named("obs-kube-prometheus-stack").inputs["values"]
    assert prod["grafana"]["persistence"]["enabled"] is True
    assert "storage" in prod["alertmanager"]["alertmanagerSpec"]
    assert dev["grafana"]["persistence"]["enabled"] is False
    assert "storage" not in dev["alertmanager"]["alertmanagerSpec"]
    dev_cpu = dev["prometheus"]["prometheusSpec"]["resources"]["requests"]["memory"]
    prod_cpu = prod["prometheus"]["prometheusSpec"]["resources"]["requests"]["memory"]
    assert (dev_cpu, prod_cpu) == ("512Mi", "2Gi")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_grafana_password_is_generated_and_only_in_a_secret(stack: str) -> None:
    run = obs_run(stack)
    values = run.named("obs-kube-prometheus-stack").inputs["values"]
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert "adminPassword" not in values["grafana"]
    secret = run.named("obs-grafana-admin")
    assert secret.inputs["stringData"] == "[secret]"
    assert "obs-grafana-admin" in dependency_names(run, run.named("obs-kube-prometheus-stack"))
    assert run.of_type("random:index/randomPassword:RandomPassword")
    assert "x" * 32 not in str(values)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_grafana_is_published_through_the_ingress_helper(stack: str) -> None:
    run = obs_run(stack)
    route = run.named("obs-grafana-route")
    service = route.inputs["spec"]["routes"][0]["services"][0]
    assert service == {
        "kind": "Service",
        "name": obs_values.GRAFANA_SERVICE,
        "port": obs_values.GRAFANA_SERVICE_PORT,
    }
    domain = stack_config(stack).ingress.domain
    assert run.named("obs-grafana-certificate").inputs["spec"]["dnsNames"] == [f"grafana.{domain}"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_dcgm_exporter_runs_on_gpu_nodes_after_the_crds(stack: str) -> None:
    run = obs_run(stack)
    dcgm = run.named("obs-dcgm-exporter")
    assert dcgm.inputs["version"] == versions.DCGM_EXPORTER.version
    values = dcgm.inputs["values"]
    assert values["service"] == {"enable": True}
    assert values["runtimeClassName"] == RUNTIME_CLASS
    assert "obs-kube-prometheus-stack" in dependency_names(run, dcgm)


def test_no_dcgm_exporter_without_gpu_nodes() -> None:
    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        from components.ingress.publish import IngressHandle

        config = stack_config("dev")
        cluster = config.cluster.model_copy(
            update={
                "nodes": {
                    n: node.model_copy(update={"gpu": None})
                    for n, node in config.cluster.nodes.items()
                }
            }
        )
        config = config.model_copy(update={"cluster": cluster})
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        handle = IngressHandle(domain="d.example", issuer_name="ca", provider=provider)
        return {
            "o": Observability(
                "obs", ObservabilityArgs(config=config, provider=provider, ingress=handle)
            )
        }

    run = run_program(
        stack="dev", config=config_for_engine(stack_values("dev")), secret_keys=[], program=program
    )
    releases = [r.name for r in run.of_type(RELEASE)]
    assert releases == ["obs-kube-prometheus-stack"]


def test_monitors_cover_every_platform_part_and_wait_for_the_crds() -> None:
    run = obs_run("prod")
    monitors = {
        r.inputs["metadata"]["name"]: r
        for r in run.resources
        if r.type.endswith((":ServiceMonitor", ":PodMonitor"))
    }
    parts = {"vllm", "litellm", "traefik", "cert-manager", "cnpg", "linkerd-proxy"}
    assert set(monitors) == parts | {"embeddings"}  # prod has the data layer on
    vllm = monitors["vllm"].inputs["spec"]
    assert vllm["namespaceSelector"] == {"matchNames": ["inference"]}
    assert vllm["selector"]["matchLabels"] == {"app.kubernetes.io/component": "model-server"}
    assert vllm["endpoints"][0]["port"] == "http"
    assert vllm["endpoints"][0]["path"] == "/metrics"
    litellm = monitors["litellm"].inputs["spec"]
    assert litellm["namespaceSelector"] == {"matchNames": ["llm-gateway"]}
    for monitor in monitors.values():
        assert "obs-kube-prometheus-stack" in dependency_names(run, monitor)


def test_linkerd_monitor_only_with_the_mesh() -> None:
    from components.observability.monitors import platform_monitors

    config = stack_config("dev")
    assert config.mesh.enabled
    with_mesh = {m.name for m in platform_monitors(config)}
    without = config.model_copy(update={"mesh": config.mesh.model_copy(update={"enabled": False})})
    assert "linkerd-proxy" in with_mesh
    assert {m.name for m in platform_monitors(without)} == with_mesh - {"linkerd-proxy"}


def test_each_vllm_port_of_a_lan_host_is_scraped_and_ollama_ports_never() -> None:
    from components.observability.monitors import vllm_monitor

    config = stack_config("prod")
    ports = [e["port"] for e in vllm_monitor(config).spec["endpoints"]]
    assert ports == ["http", "vllm-8000", "vllm-8001"]
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["services"][1] = {
        "port": 11434,
        "server": "ollama",
    }
    qwen = values["inference"]["models"]["Qwen3-4B"]
    qwen.update(lan_port=11434, backend_model="qwen3:4b")
    del qwen["extra_args"]
    spec = vllm_monitor(parse_platform_config(values)).spec
    assert [e["port"] for e in spec["endpoints"]] == ["http", "vllm-8000"]


def test_backup_alert_only_where_backups_exist() -> None:
    def alerts(stack: str) -> set[str]:
        rule = obs_run(stack).named("obs-rules")
        return {r["alert"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]}

    assert "PostgresBackupTooOld" in alerts("prod")
    assert "PostgresBackupTooOld" not in alerts("dev")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_dashboards_are_configmaps_for_the_sidecar(stack: str) -> None:
    maps = obs_run(stack).of_type("kubernetes:core/v1:ConfigMap")
    # prod runs the VPA: its resources dashboard too
    assert len(maps) == {"dev": 4, "prod": 5}[stack]
    for cm in maps:
        assert cm.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
        (key,) = cm.inputs["data"]
        assert key.endswith(".json")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_passes_its_schema(stack: str) -> None:
    run = obs_run(stack)
    core = [r for r in run.resources if r.type.startswith(("kubernetes:core/", "kubernetes:apps/"))]
    assert len(core) >= 5
    for resource in core:
        validate_core(resource)
    custom = _custom(run)
    assert {r.type.rsplit(":", 1)[1] for r in custom} >= {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Certificate",
        "IngressRoute",
    }
    for resource in custom:
        validate_custom_resource(resource)


def test_schema_check_catches_a_misspelled_monitor_field() -> None:
    import copy

    import jsonschema

    monitor = next(r for r in obs_run("dev").resources if r.type.endswith(":ServiceMonitor"))
    broken = copy.deepcopy(monitor)
    broken.inputs["spec"]["endpoints"][0]["port"] = 8000  # must be a port name
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(broken)


def test_litellm_is_scraped_where_the_gateway_serves_its_metrics() -> None:
    from components.llm_gateway.gateway import METRICS_PATH
    from components.observability.monitors import litellm_monitor

    (endpoint,) = litellm_monitor().spec["endpoints"]
    assert endpoint["path"] == METRICS_PATH


def test_the_embeddings_server_is_scraped_only_with_the_data_layer() -> None:
    from components.observability.monitors import platform_monitors

    assert "embeddings" not in {m.name for m in platform_monitors(stack_config("dev"))}
    (monitor,) = [m for m in platform_monitors(stack_config("prod")) if m.name == "embeddings"]
    assert monitor.spec["namespaceSelector"] == {"matchNames": ["data"]}
    assert monitor.spec["endpoints"][0]["port"] == "metrics"

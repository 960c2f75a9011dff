"""The cluster base under the recording mocks: namespaces, quotas, policies, providers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.cluster.namespaces import platform_flows, platform_namespaces
from components.config import parse_platform_config
from tests.support import run_stack, stack_config, stack_values
from tools.mock_engine import ProgramRun, RecordedResource

StackRun = Callable[[str], ProgramRun]


def _by_namespace(run: ProgramRun, type_token: str) -> dict[str, list[RecordedResource]]:
    found: dict[str, list[RecordedResource]] = {}
    for resource in run.of_type(type_token):
        found.setdefault(resource.inputs["metadata"]["namespace"], []).append(resource)
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_kubernetes_resource_uses_the_cluster_provider(
    stack_run: StackRun, stack: str
) -> None:
    run = stack_run(stack)
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    kubernetes = [r for r in run.resources if r.type.startswith("kubernetes:") and r.custom]
    assert kubernetes
    assert {r.provider for r in kubernetes} == {provider.urn}
    assert provider.inputs["kubeconfig"] == "[secret]"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_namespaces_carry_pod_security_labels(stack_run: StackRun, stack: str) -> None:
    run = stack_run(stack)
    namespaces = {
        r.inputs["metadata"]["name"]: r for r in run.of_type("kubernetes:core/v1:Namespace")
    }
    expected = {spec.name: spec for spec in platform_namespaces(stack_config(stack))}
    assert set(namespaces) == set(expected)
    for name, resource in namespaces.items():
        labels = resource.inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == expected[name].enforce.value
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.36"
        annotations = resource.inputs["metadata"].get("annotations", {})
        assert (annotations.get("linkerd.io/inject") == "enabled") == expected[name].meshed
        if expected[name].enforce.value != "restricted":
            assert annotations["llm-platform.io/pod-security-reason"]


def test_llm_gateway_is_restricted_and_meshed(stack_run: StackRun) -> None:
    (ns,) = [
        r
        for r in stack_run("dev").of_type("kubernetes:core/v1:Namespace")
        if r.inputs["metadata"]["name"] == "llm-gateway"
    ]
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns.inputs["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"


def test_data_namespace_only_where_the_data_layer_is_on(stack_run: StackRun) -> None:
    def names(run: ProgramRun) -> set[str]:
        return {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:Namespace")}

    assert "data" not in names(stack_run("dev"))
    assert "data" in names(stack_run("prod"))


def test_quotas_follow_config_per_environment(stack_run: StackRun) -> None:
    dev = _by_namespace(stack_run("dev"), "kubernetes:core/v1:ResourceQuota")
    prod = _by_namespace(stack_run("prod"), "kubernetes:core/v1:ResourceQuota")
    assert set(dev) == {"inference", "llm-gateway", "observability"}
    assert set(prod) == {"inference", "llm-gateway", "observability", "data", "arc-runners"}
    dev_gpu = dev["inference"][0].inputs["spec"]["hard"]["requests.nvidia.com/gpu"]
    prod_gpu = prod["inference"][0].inputs["spec"]["hard"]["requests.nvidia.com/gpu"]
    assert (dev_gpu, prod_gpu) == ("1", "3")
    assert prod["llm-gateway"][0].inputs["spec"]["hard"]["requests.cpu"] == "8"
    # infra namespaces get no quota that could block a chart's install
    assert "cert-manager" not in prod and "linkerd" not in prod


def test_quota_change_changes_only_that_quota() -> None:
    values = stack_values("dev")
    values["namespaces"]["inference"]["quota"]["requests_cpu"] = "12"
    changed = run_stack(values)
    quota = next(
        r
        for r in changed.of_type("kubernetes:core/v1:ResourceQuota")
        if r.inputs["metadata"]["namespace"] == "inference"
    )
    assert quota.inputs["spec"]["hard"]["requests.cpu"] == "12"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_namespace_is_default_deny(stack_run: StackRun, stack: str) -> None:
    run = stack_run(stack)
    policies = _by_namespace(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    namespaces = {spec.name for spec in platform_namespaces(stack_config(stack))}
    assert set(policies) == namespaces
    for namespace, items in policies.items():
        by_name = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in items}
        deny = by_name["default-deny"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, namespace
        assert "allow-dns" in by_name


def _allows(run: ProgramRun, source: str, target: str, port: int) -> bool:
    """Both halves present: egress from source and ingress into target on the port."""
    policies = _by_namespace(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy")

    def has(namespace: str, name: str, direction: str) -> bool:
        for r in policies.get(namespace, []):
            if r.inputs["metadata"]["name"] != name:
                continue
            for rule in r.inputs["spec"][direction]:
                ports = rule.get("ports")
                if ports is None or any(p["port"] == port for p in ports):
                    return True
        return False

    return has(source, f"allow-to-{target}", "egress") and has(
        target, f"allow-from-{source}", "ingress"
    )


def test_flows_the_platform_needs_are_allowed_and_others_are_not(stack_run: StackRun) -> None:
    run = stack_run("prod")
    assert _allows(run, "traefik", "llm-gateway", 4000)
    assert _allows(run, "llm-gateway", "inference", 8000)
    assert _allows(run, "llm-gateway", "inference", 4143)  # Linkerd's inbound proxy port
    assert _allows(run, "observability", "inference", 9999)  # scrapes any metrics port
    assert not _allows(run, "traefik", "inference", 8000)  # only via the gateway
    assert not _allows(run, "inference", "llm-gateway", 4000)
    assert not _allows(run, "data", "inference", 8000)


def test_lan_gpu_host_is_reachable_from_the_gateway_and_the_scraper_only() -> None:
    config = stack_config("prod")
    flows = [f for f in platform_flows(config) if f.target == "192.168.10.50/32"]
    assert sorted((f.source, f.ports) for f in flows) == [
        ("arc-runners", (22,)),  # `pulumi up` installs the managed host over SSH
        ("llm-gateway", (8000, 8001)),  # one port per service of the host
        ("observability", (8000, 8001)),  # Prometheus reads vLLM's /metrics there
    ]


def test_mcp_servers_open_only_the_gateway_egress_they_need() -> None:
    """An in-cluster server: its namespace and port, from the gateway only; a remote one on
    443 rides the gateway's existing HTTPS egress, another port gets exactly that port."""
    config = stack_config("prod")
    flows = [f for f in platform_flows(config) if f.why.startswith("MCP server")]
    assert [(f.source, f.target, f.ports) for f in flows] == [("llm-gateway", "tools", (8080,))]
    values = stack_values("prod")
    values["llm_gateway"]["mcp_servers"] = {
        "tickets": {"url": "https://tickets.example.org:8443/mcp"},
        "local": {"service": {"namespace": "llm-gateway", "name": "tools", "port": 9000}},
    }
    values["clients"]["web-app"]["mcp_servers"] = []
    flows = [
        f for f in platform_flows(parse_platform_config(values)) if f.why.startswith("MCP server")
    ]
    # Same namespace: already allowed, nothing added.
    assert [(f.source, f.target, f.ports) for f in flows] == [("llm-gateway", "world", (8443,))]
    assert not [f for f in platform_flows(stack_config("dev")) if "MCP" in f.why]


def test_resources_are_parented_under_the_base_component(stack_run: StackRun) -> None:
    run = stack_run("dev")
    base = run.named("llm-base")
    assert base.type == "llm-platform:cluster:ClusterBase"
    for namespace in run.of_type("kubernetes:core/v1:Namespace"):
        assert namespace.parent == base.urn
    for quota in run.of_type("kubernetes:core/v1:ResourceQuota"):
        assert quota.parent.endswith(f"::llm-base-ns-{quota.inputs['metadata']['namespace']}")
        assert quota.parent in quota.depends_on

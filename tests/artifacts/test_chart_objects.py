"""What the Helm releases create, checked like the platform's own objects.

Every release of both stacks is templated by the real Helm engine (tools/releases.py) into
`build/<stack>/charts/`; these tests hold every object of the render, own and chart, to
what the API server and the cluster will hold it to at `pulumi up`: the Kubernetes schema
of the stack's version, the CRDs' schemas, the charts' values schemas and templates, Pod
Security admission, ResourceQuota admission, rollouts that can finish, pinned images.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from components import versions
from tests.support import STACKS, committed_stack_run, stack_config, stack_releases
from tests.unit.manifest_checks import crd_schema, validate_against_crd
from tools import charts, helm_template
from tools.checks import capacity, pod_security
from tools.releases import KUBE_VERSION, render_releases
from tools.render_tree import load_file
from tools.values_check import ReleaseInput, unread_keys

Obj = dict[str, Any]

BUILT_IN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "autoscaling",
        "batch",
        "discovery.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)


CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "PriorityClass",
        "RuntimeClass",
        "ValidatingWebhookConfiguration",
        "ClusterIssuer",
        "Bundle",
    }
)
"""Kinds of the charts' objects that live outside namespaces (the API reference's scope)."""


def _group(body: Obj) -> str:
    api_version = str(body["apiVersion"])
    return api_version.split("/")[0] if "/" in api_version else ""


def _label(body: Obj) -> str:
    meta = body.get("metadata") or {}
    return f"{body.get('kind')} {meta.get('namespace', '-')}/{meta.get('name')}"


@pytest.fixture(scope="module")
def chart_objects(rendered_stack: Callable[[str], Path]) -> Callable[[str], list[Obj]]:
    """The objects under `charts/` of a stack's render, as written."""
    cache: dict[str, list[Obj]] = {}

    def get(stack: str) -> list[Obj]:
        if stack not in cache:
            cache[stack] = [
                load_file(path)
                for path in sorted((rendered_stack(stack) / "charts").rglob("*.yaml"))
            ]
        return cache[stack]

    return get


@pytest.fixture(scope="module")
def all_objects(render_objects: Callable[[str], list[Obj]]) -> Callable[[str], list[Obj]]:
    """Own and chart objects of a stack's render."""
    return render_objects


# --- the tree ---------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_is_templated_into_the_charts_tree(
    rendered_stack: Callable[[str], Path], stack: str
) -> None:
    render = rendered_stack(stack)
    releases = sorted(p.stem for p in (render / "helm").glob("*.yaml"))
    assert releases and sorted(p.name for p in (render / "charts").iterdir()) == releases
    summary = (render / "summary.md").read_text()
    for release in stack_releases(stack):
        written = [
            p
            for p in (render / "charts" / release.release).rglob("*.yaml")
            if "crds" not in p.parts
        ]
        assert len(written) == len(release.objects) > 0, release.release
        for body in (load_file(p) for p in written):
            if body["kind"] not in CLUSTER_SCOPED:
                assert body["metadata"].get("namespace"), _label(body)
        row = f"| `{release.release}` | {release.chart.name} {release.chart.version} |"
        assert row in summary


def test_charts_see_the_stack_kubernetes_version_and_its_apis() -> None:
    release = next(r for r in stack_releases("prod") if r.chart == versions.TRAEFIK)
    assert versions.K3S_VERSION.split("+")[0] == KUBE_VERSION
    # the chart picks its PodDisruptionBudget API by asking the cluster for it
    assert "policy/v1/PodDisruptionBudget" in release.api_versions
    (pdb,) = [o.body for o in release.objects if o.body["kind"] == "PodDisruptionBudget"]
    assert pdb["apiVersion"] == "policy/v1"
    # and CRDs installed by other releases count as served
    assert "monitoring.coreos.com/v1/ServiceMonitor" in release.api_versions


# --- schemas ----------------------------------------------------------------------------


@cache
def _schema_problem(body_json: str) -> str | None:
    """kubernetes-validate's strict verdict, once per distinct object (the stacks share
    most chart objects, the large CRDs among them)."""
    try:
        kubernetes_validate.validate(
            json.loads(body_json), f"{versions.KUBERNETES_VERSION}.0", strict=True
        )
    except kubernetes_validate.ValidationError as error:
        return str(error.message)
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_chart_objects_pass_the_strict_kubernetes_schema(
    chart_objects: Callable[[str], list[Obj]], stack: str
) -> None:
    failures = []
    checked = 0
    for body in chart_objects(stack):
        if _group(body) not in BUILT_IN_GROUPS:
            continue
        checked += 1
        problem = _schema_problem(json.dumps(body, sort_keys=True))
        if problem is not None:
            failures.append(f"{_label(body)}: {problem}")
    assert checked > 100
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("stack", STACKS)
def test_chart_custom_resources_match_the_pinned_crds(
    chart_objects: Callable[[str], list[Obj]], stack: str
) -> None:
    custom = [b for b in chart_objects(stack) if _group(b) not in BUILT_IN_GROUPS]
    assert {b["kind"] for b in custom} >= {"ServiceMonitor", "Prometheus", "Certificate"}
    for body in custom:
        validate_against_crd(body, _label(body))


def test_crd_schemas_are_strict_and_follow_the_pins() -> None:
    import jsonschema

    schema = crd_schema("monitoring.coreos.com/v1", "ServiceMonitor")
    assert schema is not None and "monitoring.coreos.com" in schema["$comment"]
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "interval": "30s"}]},
    }
    validate_against_crd(monitor, "monitor")
    # a field the API server would prune without a word is an error here
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        validate_against_crd(monitor, "monitor")
    # the kind is known only when a pinned chart installs its CRD
    assert crd_schema("example.com/v1", "Widget") is None


@pytest.mark.parametrize("stack", STACKS)
def test_values_pass_every_chart_values_schema(stack: str) -> None:
    with_schema = 0
    for release in stack_releases(stack):
        archive = charts.archive_of(release.chart)
        if helm_template.values_schema(archive) is None:
            continue
        with_schema += 1
        assert helm_template.schema_error(archive, release.values) is None, release.release
    assert with_schema >= 2  # cert-manager and Traefik ship one


@pytest.mark.parametrize("stack", STACKS)
def test_every_values_key_the_program_sets_is_read_by_its_chart(stack: str) -> None:
    unread = {}
    for release in stack_releases(stack):
        keys = unread_keys(ReleaseInput.of(release))
        if keys:
            unread[release.release] = keys
    assert unread == {}


# --- what a pulumi up would meet -------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_templating_is_deterministic_secrets_included(stack: str) -> None:
    # A chart that generates keys or reads the clock at templating replaces them at every
    # `pulumi up` (and no two renders would agree): compare two templatings in full.
    first = render_releases(committed_stack_run(stack))
    second = render_releases(committed_stack_run(stack))
    assert [r.all_objects() for r in first] == [r.all_objects() for r in second]


@pytest.mark.parametrize("stack", STACKS)
def test_no_chart_secret_payload_reaches_the_render(
    chart_objects: Callable[[str], list[Obj]], stack: str
) -> None:
    secrets = [b for b in chart_objects(stack) if b["kind"] == "Secret"]
    assert secrets  # the charts do create some (alertmanager config, Linkerd, ...)
    for secret in secrets:
        for key in ("data", "stringData"):
            payload = secret.get(key)
            if isinstance(payload, dict):
                assert set(payload.values()) <= {"[secret]"}, _label(secret)
            else:
                assert payload in (None, "[secret]"), _label(secret)


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_passes_the_pod_security_level_its_namespace_enforces(
    all_objects: Callable[[str], list[Obj]], stack: str
) -> None:
    objects = all_objects(stack)
    levels = pod_security.namespace_levels(objects)
    pods = [o for o in objects if pod_security.pod_spec_of(o) is not None]
    assert len(pods) > 20
    rejected = []
    for body in pods:
        namespace = body["metadata"].get("namespace", "default")
        level = levels.get(namespace, pod_security.Level.PRIVILEGED)
        rejected += [
            f"{_label(body)} (namespace enforces {level}): {v.check} at {v.field}: {v.detail}"
            for v in pod_security.violations(body, level)
        ]
    assert rejected == [], "\n".join(rejected)


def test_pod_security_check_rejects_a_chart_pod_stripped_of_its_security_context(
    all_objects: Callable[[str], list[Obj]],
) -> None:
    objects = all_objects("prod")
    levels = pod_security.namespace_levels(objects)
    assert levels["cert-manager"] == pod_security.Level.RESTRICTED
    webhook = next(
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "cert-manager-webhook"
    )
    assert pod_security.violations(webhook, levels["cert-manager"]) == []
    stripped = copy.deepcopy(webhook)
    for container in stripped["spec"]["template"]["spec"]["containers"]:
        container.pop("securityContext", None)
    stripped["spec"]["template"]["spec"].pop("securityContext", None)
    found = {v.check for v in pod_security.violations(stripped, levels["cert-manager"])}
    assert {"allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile_restricted"} <= found


def _quota_inputs(stack: str, objects: list[Obj]) -> dict[str, Any]:
    releases = {r.chart.name: r for r in stack_releases(stack)}
    proxy = (
        capacity.linkerd_proxy_from_values(releases["linkerd-control-plane"].values)
        if "linkerd-control-plane" in releases
        else None
    )
    reloader = (
        capacity.config_reloader_from_values(releases["kube-prometheus-stack"].values)
        if "kube-prometheus-stack" in releases
        else capacity.DEFAULT_CONFIG_RELOADER
    )
    return {"linkerd_proxy": proxy, "config_reloader": reloader}


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_quota_admits_what_its_pods_ask_for(
    all_objects: Callable[[str], list[Obj]], stack: str
) -> None:
    objects = all_objects(stack)
    nodes = capacity.nodes_from_config(stack_config(stack))
    report = capacity.quota_report(objects, nodes, **_quota_inputs(stack, objects))
    assert report.steady == [], "\n".join(report.steady)
    assert report.peak == [], "\n".join(report.peak)
    assert report.during_hooks == [], "\n".join(report.during_hooks)


def test_the_quota_check_counts_chart_pods(all_objects: Callable[[str], list[Obj]]) -> None:
    objects = all_objects("prod")
    nodes = capacity.nodes_from_config(stack_config("prod"))
    inputs = _quota_inputs("prod", objects)
    demand = capacity.namespace_demand(objects, nodes, **inputs)["observability"]
    # Prometheus is made by the operator from a chart custom resource: counted all the same
    assert any(
        source.startswith("Prometheus/") for by in demand.contributors.values() for source in by
    )
    shrunk = [
        {**o, "spec": {**o["spec"], "hard": {"limits.cpu": "1"}}}
        if o["kind"] == "ResourceQuota" and o["metadata"]["namespace"] == "observability"
        else o
        for o in objects
    ]
    problems = capacity.quota_problems(shrunk, nodes, **inputs)
    assert any(p.startswith("observability") and "limits.cpu" in p for p in problems)


@pytest.mark.parametrize("stack", STACKS)
def test_every_rollout_can_finish(all_objects: Callable[[str], list[Obj]], stack: str) -> None:
    problems = capacity.rollout_problems(all_objects(stack))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_is_pinned_and_the_chart_images_are_in_the_summary(
    all_objects: Callable[[str], list[Obj]],
    chart_objects: Callable[[str], list[Obj]],
    rendered_stack: Callable[[str], Path],
    stack: str,
) -> None:
    problems = capacity.image_problems(all_objects(stack))
    assert problems == [], "\n".join(problems)
    summary = (rendered_stack(stack) / "summary.md").read_text()
    chart_images = capacity.images(chart_objects(stack))
    assert len(chart_images) > 10
    missing = [image for image in chart_images if f"`{image}`" not in summary]
    assert missing == []


def _scheduled_on(objects: list[Obj], body: Obj, nodes: list[capacity.Node]) -> set[str]:
    """Names of the nodes a DaemonSet's pods land on (its RuntimeClass's tolerations too)."""
    spec = body["spec"]["template"]["spec"]
    runtime = next(
        (
            o
            for o in objects
            if o["kind"] == "RuntimeClass" and o["metadata"]["name"] == spec.get("runtimeClassName")
        ),
        None,
    )
    scheduling = (runtime or {}).get("scheduling") or {}
    pod = {
        **spec,
        "nodeSelector": {**spec.get("nodeSelector", {}), **scheduling.get("nodeSelector", {})},
    }
    extra = scheduling.get("tolerations") or []
    return {node.name for node in nodes if capacity.node_eligible(pod, node, extra)}


@pytest.mark.parametrize("stack", STACKS)
def test_the_gpu_agents_run_on_every_gpu_node_and_only_there(
    all_objects: Callable[[str], list[Obj]], stack: str
) -> None:
    objects = all_objects(stack)
    config = stack_config(stack)
    nodes = capacity.nodes_from_config(config)
    gpu_nodes = {name for name, node in config.cluster.nodes.items() if node.gpu is not None}
    assert gpu_nodes, "both stacks declare GPU nodes"
    agents = {
        o["metadata"]["name"]: o
        for o in objects
        if o["kind"] == "DaemonSet"
        and o["metadata"]["name"] in {"nvidia-device-plugin", "dcgm-exporter"}
    }
    assert set(agents) == {"nvidia-device-plugin", "dcgm-exporter"}
    for name, body in agents.items():
        assert _scheduled_on(objects, body, nodes) == gpu_nodes, name

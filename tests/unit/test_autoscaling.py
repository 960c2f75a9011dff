"""The autoscaling area under the recording mocks: the KEDA and VPA releases, the
recommendations, where each waits and what each stack gets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components import versions
from components.autoscaling.recommendations import VPA_API, recommendation_spec
from components.autoscaling.values import KEDA_RELEASE, VPA_RELEASE, keda_values, vpa_values
from components.cluster.namespaces import platform_flows, platform_namespaces
from components.config import parse_platform_config
from components.inference.endpoints import INFERENCE_NAMESPACE
from components.observability import dashboards
from components.observability.values import VPA_METRICS
from components.workloads import Workload
from tests.support import stack_values
from tests.unit.manifest_checks import validate_custom_resource
from tools.mock_engine import ProgramRun, RecordedResource

RELEASE = "kubernetes:helm.sh/v3:Release"
VPA = f"kubernetes:{VPA_API}:VerticalPodAutoscaler"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"


def _releases(run: ProgramRun) -> dict[str, RecordedResource]:
    return {r.inputs["name"]: r for r in run.of_type(RELEASE)}


def test_prod_installs_keda_and_the_recommender_dev_neither(
    stack_run: Callable[[str], ProgramRun],
) -> None:
    prod = _releases(stack_run("prod"))
    keda = prod[KEDA_RELEASE]
    vpa = prod[VPA_RELEASE]
    assert (keda.inputs["chart"], keda.inputs["version"]) == (
        versions.KEDA.name,
        versions.KEDA.version,
    )
    assert keda.inputs["namespace"] == "keda"
    assert keda.inputs["values"] == keda_values(watch_namespace=INFERENCE_NAMESPACE)
    assert vpa.inputs["namespace"] == "vpa"
    assert vpa.inputs["values"] == vpa_values()
    dev = _releases(stack_run("dev"))
    assert KEDA_RELEASE not in dev and VPA_RELEASE not in dev


def test_custom_resources_wait_for_the_crds_of_their_release(
    stack_run: Callable[[str], ProgramRun],
) -> None:
    run = stack_run("prod")
    releases = _releases(run)
    keda = releases[KEDA_RELEASE].urn
    vpa = releases[VPA_RELEASE].urn
    (scaler,) = run.of_type(SCALED_OBJECT)
    assert keda in scaler.depends_on
    recommenders = run.of_type(VPA)
    assert len(recommenders) == 6  # litellm, its Redis, two model servers, TEI, Qdrant
    for resource in recommenders:
        assert vpa in resource.depends_on
        validate_custom_resource(resource)
    # The charts' own VPAs (Grafana, Prometheus) are templated at install: the release
    # that makes them must find the CRDs.
    monitoring = releases["monitoring"]
    assert vpa in monitoring.depends_on
    assert run.of_type(VPA) and not stack_run("dev").of_type(VPA)


def test_a_recommendation_changes_nothing_and_leaves_the_mesh_proxy_alone() -> None:
    spec = recommendation_spec(Workload(kind="StatefulSet", namespace="data", name="qdrant"))
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "qdrant"}
    assert spec["updatePolicy"] == {"updateMode": "Off"}
    policies = spec["resourcePolicy"]["containerPolicies"]
    assert policies[0] == {"containerName": "linkerd-proxy", "mode": "Off"}
    assert policies[-1]["containerName"] == "*"


def test_the_recommendation_metric_is_the_one_the_dashboard_reads() -> None:
    (resource,) = VPA_METRICS["spec"]["resources"]
    names = {f"{resource['metricNamePrefix']}_{m['name']}" for m in resource["metrics"]}
    assert names == {dashboards.VPA_RECOMMENDATION}
    units = {m["commonLabels"]["resource"]: m["commonLabels"]["unit"] for m in resource["metrics"]}
    # The units kube_pod_container_resource_requests reports, so the two lines compare.
    assert units == {"cpu": "core", "memory": "byte"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_namespaces_and_flows_follow_what_is_installed(stack: str) -> None:
    config = parse_platform_config(stack_values(stack))
    names = {spec.name for spec in platform_namespaces(config)}
    assert ("keda" in names) == bool(config.autoscaled_models) == (stack == "prod")
    assert ("vpa" in names) == config.vpa.enabled == (stack == "prod")
    flows = {(f.source, f.target, f.ports) for f in platform_flows(config)}
    autoscaling = {f for f in flows if {"keda", "vpa"} & {f[0], f[1]}}
    if stack == "prod":
        assert autoscaling == {
            ("world", "keda", (6443, 9443)),
            ("keda", "world", (443, 6443)),
            ("keda", "observability", (9090,)),
            ("vpa", "world", (443, 6443)),
            ("observability", "keda", ()),
            ("observability", "vpa", ()),
        }
    else:
        assert autoscaling == set()


def test_keda_and_vpa_switch_independently() -> None:
    values = stack_values("prod")
    values["vpa"] = {"enabled": False}
    config = parse_platform_config(values)
    names = {spec.name for spec in platform_namespaces(config)}
    assert "keda" in names and "vpa" not in names
    values = stack_values("prod")
    values["inference"]["models"]["qwen3-14b"].pop("autoscaling")
    names = {spec.name for spec in platform_namespaces(parse_platform_config(values))}
    assert "keda" not in names and "vpa" in names

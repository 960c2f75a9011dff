"""KEDA and the VPA in the render: each scaler and recommender points at something that
exists, the releases are what the docs say, and nothing of either is there when off."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.autoscaling.recommendations import MESH_PROXY_CONTAINER
from components.inference.endpoints import INFERENCE_NAMESPACE, model_service_name
from tests.support import STACKS, stack_config
from tests.unit.manifest_checks import validate_against_crd

Obj = dict[str, Any]


def _of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o.get("kind") == kind]


def _exists(objects: list[Obj], namespace: str, api_version: str, kind: str, name: str) -> bool:
    return any(
        o.get("apiVersion") == api_version
        and o.get("kind") == kind
        and o["metadata"].get("name") == name
        and o["metadata"].get("namespace") == namespace
        for o in objects
    )


def test_every_scaled_object_scales_a_model_server_of_the_render(
    render_objects: Callable[[str], list[Obj]],
) -> None:
    objects = render_objects("prod")
    config = stack_config("prod")
    scalers = _of_kind(objects, "ScaledObject")
    assert {s["metadata"]["name"] for s in scalers} == {
        model_service_name(n) for n in config.autoscaled_models
    }
    for scaler in scalers:
        validate_against_crd(scaler, scaler["metadata"]["name"])
        target = scaler["spec"]["scaleTargetRef"]
        namespace = scaler["metadata"]["namespace"]
        assert namespace == INFERENCE_NAMESPACE
        assert _exists(objects, namespace, target["apiVersion"], target["kind"], target["name"])
    # KEDA reconciles exactly that namespace.
    (operator,) = [
        o
        for o in _of_kind(objects, "Deployment")
        if o["metadata"]["name"] == "keda-operator" and o["metadata"]["namespace"] == "keda"
    ]
    env = {
        e["name"]: e.get("value")
        for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["WATCH_NAMESPACE"] == INFERENCE_NAMESPACE


def test_the_external_metrics_api_is_served_by_keda(
    render_objects: Callable[[str], list[Obj]],
) -> None:
    (api,) = _of_kind(render_objects("prod"), "APIService")
    assert api["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    assert api["spec"]["service"] == {
        "name": "keda-operator-metrics-apiserver",
        "namespace": "keda",
        "port": 443,
    }


def test_every_recommender_targets_a_platform_workload_and_only_recommends(
    render_objects: Callable[[str], list[Obj]],
) -> None:
    objects = render_objects("prod")
    recommenders = _of_kind(objects, "VerticalPodAutoscaler")
    targets = set()
    for vpa in recommenders:
        validate_against_crd(vpa, vpa["metadata"]["name"])
        namespace = vpa["metadata"]["namespace"]
        ref = vpa["spec"]["targetRef"]
        assert _exists(objects, namespace, ref["apiVersion"], ref["kind"], ref["name"]), ref
        assert vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
        targets.add((namespace, ref["kind"], ref["name"]))
    config = stack_config("prod")
    assert targets == {
        ("llm-gateway", "Deployment", "litellm"),
        ("llm-gateway", "StatefulSet", "litellm-redis"),
        *{
            (INFERENCE_NAMESPACE, "Deployment", model_service_name(n))
            for n, m in config.inference.models.items()
            if m.placement == "cluster"
        },
        ("data", "Deployment", "embeddings"),
        ("data", "StatefulSet", "qdrant"),
        ("observability", "Deployment", "monitoring-grafana"),
        ("observability", "Prometheus", "kps-prometheus"),
    }
    own = [v for v in recommenders if v["metadata"]["namespace"] != "observability"]
    for vpa in own:
        policies = {
            p["containerName"]: p for p in vpa["spec"]["resourcePolicy"]["containerPolicies"]
        }
        assert policies[MESH_PROXY_CONTAINER]["mode"] == "Off"
        assert policies["*"]["controlledResources"] == ["cpu", "memory"]


def test_only_the_recommender_runs_nothing_rewrites_or_evicts_pods(
    rendered_stack: Callable[[str], Path],
) -> None:
    release = rendered_stack("prod") / "charts" / "vpa"
    objects = [yaml.safe_load(p.read_text()) for p in release.rglob("*.yaml")]
    assert {o["kind"] for o in objects} == {
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "ServiceAccount",
    }
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["metadata"]["name"] == "vpa-vertical-pod-autoscaler-recommender"
    assert deployment["spec"]["replicas"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_off_means_absent(rendered_stack: Callable[[str], Path], stack: str) -> None:
    config = stack_config(stack)
    render = rendered_stack(stack)
    releases = {p.stem for p in (render / "helm").glob("*.yaml")}
    assert ("keda" in releases) == bool(config.autoscaled_models)
    assert ("vpa" in releases) == config.vpa.enabled
    manifests = render / "manifests"
    assert (manifests / "keda").is_dir() == bool(config.autoscaled_models)
    assert (manifests / "vpa").is_dir() == config.vpa.enabled
    if stack == "dev":
        assert not config.autoscaled_models and not config.vpa.enabled
        kinds = {yaml.safe_load(p.read_text()).get("kind") for p in manifests.rglob("*.yaml")}
        assert not kinds & {"ScaledObject", "VerticalPodAutoscaler"}

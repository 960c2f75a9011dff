"""Capacity checks (tools/checks/capacity.py) on synthetic Kubernetes objects."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from tests.support import stack_config
from tools.checks.capacity import (
    LinkerdProxy,
    Node,
    NodeTaint,
    config_reloader_from_values,
    image_problems,
    images,
    linkerd_proxy_from_values,
    namespace_demand,
    nodes_from_config,
    parse_quantity,
    quota_problems,
    quota_report,
    rollout_problems,
)

GI = 1024**3
MI = 1024**2
NODES = [Node(name="n1", labels={"kubernetes.io/hostname": "n1"})]


def container(name: str = "app", image: str = "app:1.0", **resources: Any) -> dict[str, Any]:
    """A container; `resources` as `requests={...}, limits={...}`."""
    return {"name": name, "image": image, "resources": resources}


def deployment(
    name: str,
    containers: list[dict[str, Any]],
    *,
    ns: str = "apps",
    replicas: int | None = None,
    init: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": containers}
    if init:
        pod["initContainers"] = init
    body: dict[str, Any] = {
        "template": {"metadata": {"annotations": annotations or {}}, "spec": pod},
        **spec,
    }
    if replicas is not None:
        body["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def limit_range(ns: str = "apps") -> dict[str, Any]:
    return {
        "kind": "LimitRange",
        "metadata": {"name": "defaults", "namespace": ns},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "1", "memory": "512Mi"},
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                }
            ]
        },
    }


def quota(ns: str = "apps", **hard: str) -> dict[str, Any]:
    return {
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": ns},
        "spec": {"hard": {k.replace("_", ".", 1): v for k, v in hard.items()}},
    }


def namespace(name: str, inject: bool) -> dict[str, Any]:
    annotations = {"linkerd.io/inject": "enabled"} if inject else {}
    return {"kind": "Namespace", "metadata": {"name": name, "annotations": annotations}}


def totals(objects: list[dict[str, Any]], ns: str = "apps", **kw: Any) -> dict[str, Fraction]:
    return namespace_demand(objects, kw.pop("nodes", NODES), **kw)[ns].totals


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", Fraction(1, 10)),
        ("1.5Gi", Fraction(3, 2) * GI),
        ("250Mi", 250 * MI),
        ("2Ki", 2048),
        ("1k", 1000),
        ("2M", 2_000_000),
        ("1G", 10**9),
        ("2e3", 2000),
        ("1.5E-1", Fraction(3, 20)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("3Ti", 3 * 1024**4),
        (2, 2),
        (0.25, Fraction(1, 4)),
    ],
)
def test_quantities_parse_exactly(text: str | int | float, expected: Fraction | int) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "1Gb", "abc", "1.2.3", "5 Mi"])
def test_bad_quantities_raise(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(text)


# --------------------------------------------------------------------------- containers


def test_limit_range_defaults_fill_what_a_container_leaves_unset() -> None:
    objects = [
        limit_range(),
        deployment("bare", [container()]),
        deployment("limit-only", [container(limits={"cpu": "2", "memory": "1Gi"})]),
        deployment("request-only", [container(requests={"cpu": "300m"})]),
    ]
    demand = namespace_demand(objects, NODES)["apps"]
    by = demand.contributors
    assert by["requests.cpu"]["Deployment/apps/bare"] == Fraction(1, 10)
    assert by["limits.memory"]["Deployment/apps/bare"] == 512 * MI
    # a limit without a request gets request = limit (API defaulting), not defaultRequest
    assert by["requests.cpu"]["Deployment/apps/limit-only"] == 2
    assert by["requests.memory"]["Deployment/apps/limit-only"] == GI
    # a request without a limit keeps its request and gets the default limit
    assert by["requests.cpu"]["Deployment/apps/request-only"] == Fraction(3, 10)
    assert by["limits.cpu"]["Deployment/apps/request-only"] == 1
    assert by["requests.memory"]["Deployment/apps/request-only"] == 128 * MI


def test_limit_range_items_default_like_the_api_server() -> None:
    item = {
        "type": "Container",
        "max": {"cpu": "2", "memory": "1Gi"},
        "min": {"memory": "64Mi", "ephemeral-storage": "1Gi"},
    }
    item["default"] = {"memory": "256Mi"}
    objects = [
        {
            "kind": "LimitRange",
            "metadata": {"name": "l", "namespace": "apps"},
            "spec": {"limits": [item]},
        },
        deployment("bare", [container()]),
    ]
    result = totals(objects)
    assert result["limits.cpu"] == 2  # default <- max
    assert result["requests.cpu"] == 2  # defaultRequest <- default
    assert result["limits.memory"] == 256 * MI
    assert result["requests.memory"] == 256 * MI  # default wins over min
    assert result["requests.ephemeral-storage"] == GI  # defaultRequest <- min
    assert "limits.ephemeral-storage" not in result


def test_without_a_limit_range_nothing_is_invented() -> None:
    result = totals([deployment("bare", [container()])])
    assert "requests.cpu" not in result and "limits.memory" not in result
    assert result["pods"] == 1


def test_init_containers_count_by_the_max_rule() -> None:
    two = [container("a", requests={"cpu": "500m"}), container("b", requests={"cpu": "500m"})]
    big_init = [container("init", requests={"cpu": "2"})]
    small_init = [container("init", requests={"cpu": "200m", "memory": "1Gi"})]
    assert totals([deployment("x", two, init=big_init)])["requests.cpu"] == 2
    result = totals([deployment("x", two, init=small_init, replicas=3)])
    assert result["requests.cpu"] == 3  # sum(containers) = 1 per pod, x3
    assert result["requests.memory"] == 3 * GI  # only the init container asks for memory


def test_native_sidecars_add_to_containers_and_to_later_init_containers() -> None:
    sidecar = {**container("proxy", requests={"cpu": "1"}), "restartPolicy": "Always"}
    init = [sidecar, container("late-init", requests={"cpu": "3"})]
    result = totals([deployment("x", [container(requests={"cpu": "1"})], init=init)])
    assert result["requests.cpu"] == 4  # late-init 3 + sidecar 1 > containers 1 + sidecar 1


# --------------------------------------------------------------------------- pods per object


def daemonset(**pod: Any) -> dict[str, Any]:
    pod.setdefault("containers", [container(requests={"cpu": "100m"})])
    return {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "apps"},
        "spec": {"template": {"spec": pod}},
    }


GPU_TAINT = NodeTaint(key="nvidia.com/gpu", value="present", effect="NoSchedule")
CLUSTER = [
    Node("cpu-1", {"role": "general", "kubernetes.io/arch": "amd64"}),
    Node("cpu-2", {"role": "general", "kubernetes.io/arch": "arm64"}),
    Node("gpu-1", {"role": "ai", "kubernetes.io/arch": "amd64"}, (GPU_TAINT,)),
    Node("soft", {"role": "general"}, (NodeTaint("spot", "", "PreferNoSchedule"),)),
]


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        ({}, 3),  # the GPU node's NoSchedule taint is not tolerated; PreferNoSchedule is
        ({"tolerations": [{"operator": "Exists"}]}, 4),
        ({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}, 4),
        ({"tolerations": [{"key": "nvidia.com/gpu", "value": "present"}]}, 4),
        ({"tolerations": [{"key": "nvidia.com/gpu", "value": "absent"}]}, 3),
        (
            {
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}
                ]
            },
            3,
        ),
        ({"nodeSelector": {"role": "ai"}}, 0),
        ({"nodeSelector": {"role": "ai"}, "tolerations": [{"operator": "Exists"}]}, 1),
        ({"nodeSelector": {"kubernetes.io/arch": "amd64"}}, 1),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "role", "operator": "NotIn", "values": ["ai"]}
                                    ]
                                }
                            ]
                        }
                    }
                },
                "tolerations": [{"operator": "Exists"}],
            },
            3,
        ),
    ],
)
def test_daemonsets_count_once_per_eligible_node(pod: dict[str, Any], expected: int) -> None:
    result = totals([daemonset(**pod)], nodes=CLUSTER)
    assert result.get("pods", 0) == expected
    assert result.get("requests.cpu", 0) == Fraction(expected, 10)


def test_no_execute_taints_need_a_matching_toleration() -> None:
    draining = [Node("n", {}, (NodeTaint("maintenance", "yes", "NoExecute"),))]
    no_schedule_only = [{"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}]
    assert totals([daemonset(tolerations=no_schedule_only)], nodes=draining).get("pods", 0) == 0
    tolerated = [{"key": "maintenance", "operator": "Exists", "effect": "NoExecute"}]
    assert totals([daemonset(tolerations=tolerated)], nodes=draining)["pods"] == 1


def test_runtime_class_tolerations_and_overhead_apply() -> None:
    runtime = {
        "kind": "RuntimeClass",
        "metadata": {"name": "nvidia"},
        "handler": "nvidia",
        "overhead": {"podFixed": {"cpu": "50m", "memory": "10Mi"}},
        "scheduling": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
    }
    result = totals([runtime, daemonset(runtimeClassName="nvidia")], nodes=CLUSTER)
    assert result["pods"] == 4
    assert result["requests.cpu"] == 4 * Fraction(15, 100)
    assert result["requests.memory"] == 4 * 10 * MI


def test_statefulset_claims_count_once_per_replica() -> None:
    statefulset = {
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "apps"},
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [container()]}},
            "volumeClaimTemplates": [
                {"spec": {"resources": {"requests": {"storage": "50Gi"}}}},
                {"spec": {"resources": {"requests": {"storage": "1Gi"}}}},
            ],
        },
    }
    claim = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "cache", "namespace": "apps"},
        "spec": {"resources": {"requests": {"storage": "10Gi"}}},
    }
    result = totals([statefulset, claim])
    assert result["persistentvolumeclaims"] == 7
    assert result["requests.storage"] == (3 * 51 + 10) * GI
    assert result["pods"] == 3


def test_jobs_and_cronjobs_count_their_running_pods() -> None:
    template = {"spec": {"containers": [container(requests={"cpu": "1"})]}}
    job = {
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "apps"},
        "spec": {"parallelism": 4, "completions": 2, "template": template},
    }
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "c", "namespace": "apps"},
        "spec": {"jobTemplate": {"spec": {"template": template}}},
    }
    result = totals([job, cron])
    assert result["pods"] == 3
    assert result["requests.cpu"] == 3


def hpa(name: str, low: int, high: int) -> dict[str, Any]:
    return {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {
            "minReplicas": low,
            "maxReplicas": high,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        },
    }


def test_hpa_raises_replicas_to_min_and_peak_to_max() -> None:
    objects = [
        deployment("web", [container(requests={"cpu": "1"})], replicas=1),
        hpa("web", 2, 5),
        quota(requests_cpu="4"),
    ]
    assert totals(objects)["pods"] == 2
    assert totals(objects, peak=True)["pods"] == 5
    assert quota_problems(objects, NODES) == []
    report = quota_report(objects, NODES)
    assert report.steady == []
    assert len(report.peak) == 1
    assert report.peak[0].startswith("PEAK (HPAs at maxReplicas) apps: requests.cpu 5 > hard 4")


def test_a_keda_scaled_object_counts_as_the_hpa_it_makes() -> None:
    # No `replicas`: KEDA's to set, and the API server defaults it to 1.
    server = deployment("gpu", [container(requests={"cpu": "2"})])
    assert "replicas" not in server["spec"]
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "gpu", "namespace": "apps"},
        "spec": {
            "scaleTargetRef": {"name": "gpu"},  # a Deployment unless a kind is named
            "minReplicaCount": 0,
            "maxReplicaCount": 3,
        },
    }
    objects = [server, scaled, quota(requests_cpu="4")]
    assert totals(objects)["pods"] == 1
    assert totals(objects, peak=True)["pods"] == 3
    report = quota_report(objects, NODES)
    assert report.steady == []
    assert report.peak[0].startswith("PEAK (HPAs at maxReplicas) apps: requests.cpu 6 > hard 4")
    # A ScaledObject of another API group is not KEDA's: nothing is scaled.
    foreign = {**scaled, "apiVersion": "example.org/v1"}
    assert totals([server, foreign, quota(requests_cpu="4")], peak=True)["pods"] == 1


def test_peak_list_leaves_out_what_the_hpa_does_not_change() -> None:
    objects = [
        deployment("web", [container(requests={"cpu": "1"})], replicas=1),
        deployment("big", [container(requests={"cpu": "9"})]),
        hpa("web", 1, 3),
        claim("data", "ReadWriteOnce", "2Gi"),
        quota(requests_cpu="4", requests_storage="1Gi", pods="10"),
    ]
    report = quota_report(objects, NODES)
    assert [line.split(" (top")[0] for line in report.steady] == [
        "apps: requests.cpu 10 > hard 4",
        "apps: requests.storage 2Gi > hard 1Gi",
    ]
    assert [line.split(" (top")[0] for line in report.peak] == [
        "PEAK (HPAs at maxReplicas) apps: requests.cpu 12 > hard 4"
    ]


def test_helm_hook_jobs_count_only_during_an_install_one_at_a_time() -> None:
    def hook_job(name: str, cpu: str) -> dict[str, Any]:
        return {
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": "apps",
                "annotations": {"helm.sh/hook": "pre-install,pre-upgrade"},
            },
            "spec": {"template": {"spec": {"containers": [container(requests={"cpu": cpu})]}}},
        }

    objects = [
        deployment("web", [container(requests={"cpu": "3"})]),
        hook_job("big", "2"),
        hook_job("small", "1"),
        quota(requests_cpu="4"),
    ]
    assert totals(objects)["requests.cpu"] == 3
    assert totals(objects, helm_hooks=True)["requests.cpu"] == 5  # 3 + the larger hook
    report = quota_report(objects, NODES)
    assert report.steady == [] and report.peak == []
    assert report.during_hooks == [
        "DURING HELM HOOKS (steady + the largest hook Job) apps: requests.cpu 5 > hard 4 "
        "(top: Deployment/apps/web 3, Job/apps/big 2)"
    ]


# --------------------------------------------------------------------------- operator CRs


def test_prometheus_and_alertmanager_resources_are_modelled_as_their_pods() -> None:
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": "p", "namespace": "apps"},
        "spec": {
            "replicas": 2,
            "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "2"}},
            "storage": {
                "volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "100Gi"}}}}
            },
        },
    }
    alertmanager = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Alertmanager",
        "metadata": {"name": "a", "namespace": "apps"},
        "spec": {"resources": {"limits": {"cpu": "200m", "memory": "256Mi"}}},
    }
    result = totals([prometheus, alertmanager])
    # (500m + 10m reloader) x 2 + (200m + 10m) ; limits (2 + 10m) x 2 + 210m
    assert result["requests.cpu"] == Fraction(102 + 21, 100)
    assert result["limits.cpu"] == Fraction(402 + 21, 100)
    # the operator gives alertmanager a 200Mi memory request when unset, before the API
    # server could default the request to the 256Mi limit
    assert result["requests.memory"] == 2 * (2 * GI + 50 * MI) + 200 * MI + 50 * MI
    assert result["limits.memory"] == 2 * 50 * MI + 256 * MI + 50 * MI
    assert result["pods"] == 3
    assert result["requests.storage"] == 200 * GI
    assert result["persistentvolumeclaims"] == 2


def test_config_reloader_resources_follow_the_chart_values() -> None:
    values = {
        "prometheusOperator": {
            "prometheusConfigReloader": {
                "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
            }
        }
    }
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": "p", "namespace": "apps"},
        "spec": {"resources": {"requests": {"cpu": "1"}}},
    }
    reloader = config_reloader_from_values(values)
    assert totals([prometheus], config_reloader=reloader)["requests.cpu"] == 2
    assert totals([prometheus])["requests.cpu"] == Fraction(101, 100)


# --------------------------------------------------------------------------- linkerd


PROXY = LinkerdProxy(
    requests={"cpu": Fraction(1, 10), "memory": 20 * MI},
    limits={"memory": 250 * MI},
    native_sidecar=True,
    cni=True,
)


def test_linkerd_proxy_is_added_only_in_injected_namespaces() -> None:
    app = [container(requests={"cpu": "1", "memory": "1Gi"}, limits={"memory": "1Gi"})]
    objects = [
        namespace("meshed", inject=True),
        namespace("plain", inject=False),
        deployment("a", app, ns="meshed"),
        deployment("b", app, ns="plain"),
        deployment("opted-out", app, ns="meshed", annotations={"linkerd.io/inject": "disabled"}),
        deployment("opted-in", app, ns="plain", annotations={"linkerd.io/inject": "enabled"}),
    ]
    demand = namespace_demand(objects, NODES, linkerd_proxy=PROXY)
    meshed = demand["meshed"].contributors
    plain = demand["plain"].contributors
    assert meshed["requests.cpu"]["Deployment/meshed/a"] == Fraction(11, 10)
    assert meshed["limits.memory"]["Deployment/meshed/a"] == GI + 250 * MI
    assert meshed["requests.cpu"]["Deployment/meshed/opted-out"] == 1
    assert plain["requests.cpu"]["Deployment/plain/b"] == 1
    assert plain["requests.cpu"]["Deployment/plain/opted-in"] == Fraction(11, 10)
    # without a proxy model nothing is added anywhere
    bare = namespace_demand(objects, NODES)["meshed"].contributors
    assert bare["requests.cpu"]["Deployment/meshed/a"] == 1


def test_injected_proxy_gets_limit_range_defaults_and_satisfies_the_quota() -> None:
    app = [container(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})]
    objects = [namespace("apps", inject=True), limit_range(), deployment("a", app)]
    # the proxy sets no cpu limit: LimitRanger gives it the namespace default (1)
    assert totals(objects, linkerd_proxy=PROXY)["limits.cpu"] == 2
    strict = [namespace("apps", inject=True), deployment("a", app), quota(limits_cpu="10")]
    problems = quota_problems(strict, NODES, linkerd_proxy=PROXY)
    assert problems == [
        "apps: Deployment/apps/a pods rejected by the quota: a container sets no limits.cpu "
        "and no LimitRange default supplies it"
    ]
    assert quota_problems([*strict, limit_range()], NODES, linkerd_proxy=PROXY) == []


def test_linkerd_proxy_model_reads_the_chart_values() -> None:
    values = {
        "cniEnabled": True,
        "proxy": {
            "nativeSidecar": True,
            "resources": {
                "cpu": {"request": "100m"},
                "memory": {"request": "20Mi", "limit": "250Mi"},
            },
        },
    }
    proxy = linkerd_proxy_from_values(values)
    assert proxy == PROXY
    without_cni = linkerd_proxy_from_values(
        {**values, "cniEnabled": False, "proxyInit": {"resources": {"cpu": {"request": "2"}}}}
    )
    objects = [namespace("apps", inject=True), deployment("a", [container(requests={"cpu": "1"})])]
    # linkerd-init (2 cpu) runs before the sidecar and the app: the max rule takes it
    assert totals(objects, linkerd_proxy=without_cni)["requests.cpu"] == 2
    assert totals(objects, linkerd_proxy=proxy)["requests.cpu"] == Fraction(11, 10)


# --------------------------------------------------------------------------- quota problems


def test_quota_problem_names_namespace_resource_figures_and_top_contributors() -> None:
    objects = [
        deployment(f"d{i}", [container(limits={"memory": f"{i}Gi"})]) for i in range(1, 6)
    ] + [quota(limits_memory="10Gi", requests_memory="100Gi")]
    problems = quota_problems(objects, NODES)
    assert problems == [
        "apps: limits.memory 15Gi > hard 10Gi (top: Deployment/apps/d5 5Gi, "
        "Deployment/apps/d4 4Gi, Deployment/apps/d3 3Gi)"
    ]


def test_quota_only_constrains_what_it_names() -> None:
    objects = [
        deployment("d", [container(requests={"cpu": "64", "memory": "1Ti"})], replicas=100),
        quota(pods="100"),
    ]
    assert quota_problems(objects, NODES) == []
    assert quota_problems([*objects[:1], quota(pods="99")], NODES) == [
        "apps: pods 100 > hard 99 (top: Deployment/apps/d 100)"
    ]


def test_storage_over_quota_is_reported() -> None:
    claims = [
        {
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"c{i}", "namespace": "apps"},
            "spec": {"resources": {"requests": {"storage": "60Gi"}}},
        }
        for i in range(2)
    ]
    problems = quota_problems([*claims, quota(requests_storage="100Gi")], NODES)
    assert len(problems) == 1
    assert problems[0].startswith("apps: requests.storage 120Gi > hard 100Gi")


# --------------------------------------------------------------------------- rollouts


def claim(name: str, mode: str, size: str = "1Gi") -> dict[str, Any]:
    return {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"accessModes": [mode], "resources": {"requests": {"storage": size}}},
    }


def mounting(claim_name: str, **spec: Any) -> dict[str, Any]:
    obj = deployment("web", [container()], **spec)
    obj["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}
    ]
    return obj


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_rwo_claim_with_rolling_update_is_flagged(mode: str) -> None:
    problems = rollout_problems([claim("data", mode), mounting("data")])
    assert problems == [
        f"Deployment/apps/web: RollingUpdate with maxSurge 1 mounts PersistentVolumeClaim "
        f"data ({mode}); use strategy Recreate"
    ]


@pytest.mark.parametrize(
    ("mode", "spec"),
    [
        ("ReadWriteOnce", {"strategy": {"type": "Recreate"}}),
        ("ReadWriteOnce", {"strategy": {"rollingUpdate": {"maxSurge": 0}}}),
        ("ReadWriteOnce", {"strategy": {"rollingUpdate": {"maxSurge": "0%"}}}),
        ("ReadWriteMany", {}),
    ],
)
def test_recreate_no_surge_or_shared_claims_pass(mode: str, spec: dict[str, Any]) -> None:
    assert rollout_problems([claim("data", mode), mounting("data", **spec)]) == []


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("foo", False),
        ("foo:latest", False),
        ("registry.local:5000/foo", False),
        ("foo:", False),
        ("", False),
        ("foo:1.2.3", True),
        ("registry.local:5000/team/foo:1.2", True),
        ("foo@sha256:" + "a" * 64, True),
        ("foo:latest@sha256:" + "b" * 64, True),
    ],
)
def test_images_must_be_pinned(image: str, pinned: bool) -> None:
    pod = deployment("d", [container(image=image)], init=[container("init", image="init:1")])
    assert (image_problems([pod]) == []) is pinned


def test_image_checks_cover_init_ephemeral_containers_and_custom_resources() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "apps"},
        "spec": {
            "containers": [container(image="ok:1")],
            "initContainers": [container("init", image="init:latest")],
            "ephemeralContainers": [container("debug", image="busybox")],
        },
    }
    cnpg = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "db", "namespace": "apps"},
        "spec": {"imageName": "ghcr.io/cloudnative-pg/postgresql"},
    }
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": "p", "namespace": "apps"},
        "spec": {"image": "quay.io/prometheus/prometheus:latest", "containers": [{"name": "x"}]},
    }
    problems = image_problems([pod, cnpg, prometheus])
    assert [p.split(":")[0] for p in problems] == [
        "Pod/apps/p initContainers[init]",
        "Pod/apps/p ephemeralContainers[debug]",
        "Cluster/apps/db spec.imageName",
        "Prometheus/apps/p spec.image",
    ]
    assert images([pod, cnpg, prometheus]) == [
        "busybox",
        "ghcr.io/cloudnative-pg/postgresql",
        "init:latest",
        "ok:1",
        "quay.io/prometheus/prometheus:latest",
    ]


# --------------------------------------------------------------------------- nodes from config


def test_nodes_from_config_carry_platform_labels_and_gpu_taints() -> None:
    nodes = {n.name: n for n in nodes_from_config(stack_config("prod"))}
    gpu = nodes["gpu-3090"]
    assert gpu.labels["llm-platform.io/gpu-class"] == "rtx-3090"
    assert gpu.labels["kubernetes.io/hostname"] == "gpu-3090"
    assert gpu.taints == (NodeTaint("nvidia.com/gpu", "present", "NoSchedule"),)
    assert nodes["pi-1"].labels["kubernetes.io/arch"] == "arm64"
    assert nodes["rack-1"].labels["node-role.kubernetes.io/control-plane"] == "true"
    assert nodes["rack-1"].taints == ()
    # dev's single GPU node is its only node: not tainted (see ClusterConfig.node_taints)
    assert [n.taints for n in nodes_from_config(stack_config("dev"))] == [()]

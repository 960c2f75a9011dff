"""Capacity checks over rendered Kubernetes objects: quotas, rollouts, image pins.

Pure functions over plain object dicts (as `tools.render` writes them under
`build/<stack>/manifests/` and `build/<stack>/charts/`).

What is counted as the API server would count it when the pods are admitted:

* Pods per workload: Deployment/ReplicaSet/StatefulSet/ReplicationController `replicas`
  (default 1; raised to an HPA's `minReplicas`, and, as a separate *peak* figure, to its
  `maxReplicas`; a KEDA ScaledObject counts as the HPA it makes), Job `parallelism` (capped by `completions`), one Job per CronJob,
  DaemonSets once per eligible node (nodeSelector, required node affinity, NoSchedule /
  NoExecute taints against tolerations, including the RuntimeClass's scheduling
  tolerations), bare Pods once. Operator custom resources are modelled as the pods they
  make: Prometheus and Alertmanager (`replicas` x the container plus the operator's
  config-reloader sidecar and init container), CNPG `Cluster` (`instances` x postgres) and
  ARC `AutoscalingRunnerSet` (`minRunners` runner pods, `maxRunners` at peak, plus one
  listener pod in the controller's namespace: `tools/checks/arc.py`).
* Per container, in admission order: API defaulting (a limit without a request gets
  request = limit), then LimitRanger's `Container` defaults (`default` -> limits,
  `defaultRequest` -> requests, for the resources the container leaves unset; an item's
  `default` falls back to its `max`, its `defaultRequest` to `default`, then `min`). Injected containers get the defaults too:
  LimitRanger is re-invoked after mutating webhooks (linkerd/linkerd2#3750).
* Per pod, the effective request/limit of component-helpers' `PodRequests`: the larger of
  sum(containers) + sum(sidecars) and, per init container, itself plus the sidecars
  started before it; plus the RuntimeClass `overhead.podFixed` when one is given.
* Linkerd: pods injected (pod annotation `linkerd.io/inject: enabled`, else the
  namespace's annotation or label, never when the pod says `disabled`) get the proxy
  (a native sidecar when `proxy.nativeSidecar`, else a container) and, with the CNI, the
  `linkerd-network-validator` init container, or without it `linkerd-init`.
* Helm hook Jobs (`helm.sh/hook`) only while a release is installed or upgraded: apart,
  the largest one at a time on top of the steady state.
* Storage: PersistentVolumeClaim objects plus every StatefulSet volumeClaimTemplate (and
  the operator CRs' claim templates) x replicas: `persistentvolumeclaims` and
  `requests.storage`.
* ResourceQuota: a resource is constrained only when the quota's `spec.hard` names it;
  when it names a compute resource (`requests.cpu`, `limits.memory`, `cpu`, ...) every
  container and init container must set it (after defaulting) or the pod is rejected
  (kubernetes pkg/quota/v1/evaluator/core/pods.go, `enforcePodContainerConstraints`).

Left out: quota scopes and scope selectors, storage-class-specific quota keys, object
count quotas other than pods and PVCs, pods of terminated Jobs, surge pods during a
rollout (see `rollout_problems`), LimitRange min/max/ratio validation, Linkerd's injector
namespace exclusions, CNPG plugin sidecars (barman-cloud) and any pod an operator not
listed above makes.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from components.config import PlatformConfig
from tools.checks import arc

Obj = Mapping[str, Any]
Resources = dict[str, Fraction]

# --------------------------------------------------------------------------- quantities

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


def parse_quantity(value: str | int | float | Fraction) -> Fraction:
    """A Kubernetes quantity (`100m`, `1.5Gi`, `2e3`, `4`) as an exact Fraction."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    number = Fraction(match["num"])
    if match["exp"]:
        return number * Fraction(10) ** int(match["exp"][1:])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * Fraction(1024) ** _BINARY[suffix]
    return number * Fraction(10) ** _DECIMAL[suffix]


def format_quantity(resource: str, value: Fraction) -> str:
    """A readable figure: cores for cpu, Gi/Mi for bytes, a plain number otherwise."""
    if resource.endswith("cpu") or resource == "cpu":
        if value.denominator == 1:
            return str(value.numerator)
        millis = value * 1000
        return f"{float(millis):g}m" if millis < 1000 else f"{float(value):g}"
    if resource.endswith(("memory", "storage")):
        gib = value / 1024**3
        if gib >= 1 or value == 0:
            return f"{round(float(gib), 2):g}Gi"
        return f"{round(float(value / 1024**2), 2):g}Mi"
    return f"{float(value):g}"


def _resource_list(values: Mapping[str, Any] | None) -> Resources:
    return {name: parse_quantity(v) for name, v in (values or {}).items()}


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class NodeTaint:
    """A node taint."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class Node:
    """A schedulable node as the scheduler sees it: name, labels, taints."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[NodeTaint, ...] = ()


def _parse_taint(text: str) -> NodeTaint:
    """`key=value:Effect` or `key:Effect` (the form `ClusterConfig.node_taints` returns)."""
    head, effect = text.rsplit(":", 1)
    key, _, value = head.partition("=")
    return NodeTaint(key=key, value=value, effect=effect)


def nodes_from_config(config: PlatformConfig) -> list[Node]:
    """The stack's nodes with the labels and taints the platform and k3s give them.

    Labels: the configured ones plus GPU labels (`ClusterConfig.node_labels`), the kubelet's
    well-known `kubernetes.io/{hostname,arch,os}`, and on k3s servers the
    `node-role.kubernetes.io/{control-plane,master,etcd}` roles. Taints: the configured ones
    plus the GPU taint (`ClusterConfig.node_taints`); k3s servers carry none by default.
    """
    cluster = config.cluster
    nodes: list[Node] = []
    for name, node in cluster.nodes.items():
        labels = {
            **cluster.node_labels(name),
            "kubernetes.io/hostname": name,
            "kubernetes.io/arch": node.arch.value,
            "kubernetes.io/os": "linux",
        }
        if node.role == "server":
            for role in ("control-plane", "master", "etcd"):
                labels[f"node-role.kubernetes.io/{role}"] = "true"
        taints = tuple(_parse_taint(t) for t in cluster.node_taints(name))
        nodes.append(Node(name=name, labels=labels, taints=taints))
    return nodes


def _expression_matches(expr: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, operator = expr.get("key", ""), expr.get("operator", "In")
    wanted = [str(v) for v in expr.get("values") or []]
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and wanted:
        try:
            actual, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def _term_matches(term: Mapping[str, Any], node: Node) -> bool:
    fields = {"metadata.name": node.name}
    return all(
        _expression_matches(e, node.labels) for e in term.get("matchExpressions") or []
    ) and all(_expression_matches(e, fields) for e in term.get("matchFields") or [])


def _tolerates(toleration: Mapping[str, Any], taint: NodeTaint) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key") or ""
    if toleration.get("operator", "Equal") == "Exists":
        return not key or key == taint.key
    return key == taint.key and (toleration.get("value") or "") == taint.value


def node_eligible(pod_spec: Obj, node: Node, extra_tolerations: Sequence[Obj] = ()) -> bool:
    """Whether a DaemonSet pod with this spec runs on the node."""
    selector = pod_spec.get("nodeSelector") or {}
    if any(node.labels.get(k) != str(v) for k, v in selector.items()):
        return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(_term_matches(t, node) for t in terms):
        return False
    tolerations = [*(pod_spec.get("tolerations") or []), *extra_tolerations]
    return all(
        any(_tolerates(t, taint) for t in tolerations)
        for taint in node.taints
        if taint.effect in ("NoSchedule", "NoExecute")
    )


# --------------------------------------------------------------------------- injected containers


@dataclass(frozen=True)
class LinkerdProxy:
    """What Linkerd's injector adds to a meshed pod."""

    requests: Resources
    limits: Resources
    native_sidecar: bool = False
    """The proxy is an init container with `restartPolicy: Always`."""
    cni: bool = True
    """With linkerd-cni the injector adds `linkerd-network-validator`, else `linkerd-init`."""
    init_requests: Resources = field(default_factory=dict)
    init_limits: Resources = field(default_factory=dict)
    """Resources of `linkerd-init` (`proxyInit.resources`) when not using the CNI."""


def _chart_resources(values: Mapping[str, Any] | None) -> tuple[Resources, Resources]:
    """Linkerd's `{cpu: {request, limit}, memory: {...}}` form as (requests, limits)."""
    requests: Resources = {}
    limits: Resources = {}
    for name, spec in (values or {}).items():
        spec = spec or {}
        if spec.get("request") not in (None, ""):
            requests[name] = parse_quantity(spec["request"])
        if spec.get("limit") not in (None, ""):
            limits[name] = parse_quantity(spec["limit"])
    return requests, limits


def linkerd_proxy_from_values(values: Mapping[str, Any]) -> LinkerdProxy:
    """The proxy the linkerd-control-plane chart values describe (`proxy.resources`)."""
    proxy = values.get("proxy") or {}
    requests, limits = _chart_resources(proxy.get("resources"))
    init_requests, init_limits = _chart_resources((values.get("proxyInit") or {}).get("resources"))
    return LinkerdProxy(
        requests=requests,
        limits=limits,
        native_sidecar=bool(proxy.get("nativeSidecar", False)),
        cni=bool(values.get("cniEnabled", False)),
        init_requests=init_requests,
        init_limits=init_limits,
    )


# prometheus-operator's defaults for the config-reloader sidecar: `-config-reloader-cpu-request`,
# `-config-reloader-cpu-limit` (10m) and `-config-reloader-memory-request`/`-limit` (50Mi)
# (prometheus-operator Documentation, operator CLI flags, v0.89; CHANGELOG #5539 lowered the
# CPU request from 100m to 10m). kube-prometheus-stack passes
# `prometheusOperator.prometheusConfigReloader.resources` as those flags.
DEFAULT_CONFIG_RELOADER: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "10m", "memory": "50Mi"},
    "limits": {"cpu": "10m", "memory": "50Mi"},
}
# prometheus-operator gives the alertmanager container a 200Mi memory request when unset
# (pkg/alertmanager/statefulset.go, `makeStatefulSet`), before the API server sees the pod.
ALERTMANAGER_DEFAULT_MEMORY_REQUEST = "200Mi"


def config_reloader_from_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The reloader's resources from kube-prometheus-stack values, else the operator default."""
    operator = values.get("prometheusOperator") or {}
    resources = (operator.get("prometheusConfigReloader") or {}).get("resources")
    if not resources:
        return DEFAULT_CONFIG_RELOADER
    return {
        "requests": resources.get("requests") or {},
        "limits": resources.get("limits") or {},
    }


# --------------------------------------------------------------------------- pods of objects


@dataclass(frozen=True)
class PodGroup:
    """Identical pods an object makes: its pod metadata and spec, and how many."""

    ref: str
    namespace: str
    metadata: Obj
    spec: Obj
    count: int
    peak: int
    hook: bool = False
    """A Helm hook Job: runs only while a release is installed or upgraded."""


@dataclass(frozen=True)
class ClaimGroup:
    """Identical PersistentVolumeClaims an object makes."""

    ref: str
    namespace: str
    storage: Fraction
    count: int
    access_modes: tuple[str, ...] = ()


def ref(obj: Obj) -> str:
    """`Kind/namespace/name` of an object."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


def _ns(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def _key(kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    return (kind, namespace, name)


def _hpa_bounds(objects: Iterable[Obj]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(min, max) replicas of each autoscaled workload: HPAs, and KEDA ScaledObjects (which
    make an HPA with their bounds at run time; keda v2.20.2 `apis/keda/v1alpha1`
    `scaledobject_types.go`: a Deployment target by default, min 0, max 100)."""
    bounds: dict[tuple[str, str, str], tuple[int, int]] = {}
    for obj in objects:
        spec = obj.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        if obj.get("kind") == "HorizontalPodAutoscaler":
            key = _key(str(target.get("kind")), _ns(obj), str(target.get("name")))
            bounds[key] = (int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1)))
        elif obj.get("kind") == "ScaledObject" and str(obj.get("apiVersion")).startswith(
            "keda.sh/"
        ):
            kind = str(target.get("kind") or "Deployment")
            key = _key(kind, _ns(obj), str(target.get("name")))
            bounds[key] = (
                int(spec.get("minReplicaCount", 0)),
                int(spec.get("maxReplicaCount", 100)),
            )
    return bounds


def _scaled(obj: Obj, hpas: Mapping[tuple[str, str, str], tuple[int, int]]) -> tuple[int, int]:
    replicas = int((obj.get("spec") or {}).get("replicas", 1))
    meta = obj.get("metadata") or {}
    bounds = hpas.get(_key(str(obj.get("kind")), _ns(obj), str(meta.get("name"))))
    if bounds is None:
        return replicas, replicas
    steady = max(replicas, bounds[0])
    return steady, max(steady, bounds[1])


def _job_pods(job_spec: Obj) -> int:
    parallelism = int(job_spec.get("parallelism", 1))
    completions = job_spec.get("completions")
    return parallelism if completions is None else min(parallelism, int(completions))


def _template_group(obj: Obj, template: Obj, count: int, peak: int) -> PodGroup:
    return PodGroup(
        ref=ref(obj),
        namespace=_ns(obj),
        metadata=template.get("metadata") or {},
        spec=template.get("spec") or {},
        count=count,
        peak=peak,
        hook="helm.sh/hook" in ((obj.get("metadata") or {}).get("annotations") or {}),
    )


def _reloader_container(name: str, reloader: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "resources": {
            "requests": dict(reloader.get("requests") or {}),
            "limits": dict(reloader.get("limits") or {}),
        },
    }


def _operator_pod(obj: Obj, main: str, reloader: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    resources = {
        "requests": dict((spec.get("resources") or {}).get("requests") or {}),
        "limits": dict((spec.get("resources") or {}).get("limits") or {}),
    }
    if obj.get("kind") == "Alertmanager":
        resources["requests"].setdefault("memory", ALERTMANAGER_DEFAULT_MEMORY_REQUEST)
    pod: dict[str, Any] = {
        "containers": [
            {"name": main, "resources": resources},
            _reloader_container("config-reloader", reloader),
        ],
        "initContainers": [_reloader_container("init-config-reloader", reloader)],
    }
    for key in ("nodeSelector", "affinity", "tolerations", "runtimeClassName"):
        if key in spec:
            pod[key] = spec[key]
    return pod


def _cnpg_pod(obj: Obj) -> dict[str, Any]:
    resources = (obj.get("spec") or {}).get("resources") or {}
    container = {"name": "postgres", "resources": resources}
    return {
        "containers": [container],
        "initContainers": [{"name": "bootstrap-controller", "resources": resources}],
    }


def pod_groups(
    objects: Sequence[Obj],
    nodes: Sequence[Node],
    *,
    config_reloader: Mapping[str, Any] = DEFAULT_CONFIG_RELOADER,
) -> list[PodGroup]:
    """Every group of identical pods the objects make, with steady and peak counts."""
    hpas = _hpa_bounds(objects)
    runtime_tolerations = _runtime_class_tolerations(objects)
    groups: list[PodGroup] = [_template_group(pod, pod, 1, 1) for pod in arc.listener_pods(objects)]
    for obj in objects:
        kind = obj.get("kind")
        spec = obj.get("spec") or {}
        if kind == "Pod":
            groups.append(_template_group(obj, obj, 1, 1))
        elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"):
            count, peak = _scaled(obj, hpas)
            groups.append(_template_group(obj, spec.get("template") or {}, count, peak))
        elif kind == "Job":
            pods = _job_pods(spec)
            groups.append(_template_group(obj, spec.get("template") or {}, pods, pods))
        elif kind == "CronJob":
            job = (spec.get("jobTemplate") or {}).get("spec") or {}
            pods = _job_pods(job)
            groups.append(_template_group(obj, job.get("template") or {}, pods, pods))
        elif kind == "DaemonSet":
            template = spec.get("template") or {}
            pod_spec = template.get("spec") or {}
            extra = runtime_tolerations.get(str(pod_spec.get("runtimeClassName")), [])
            pods = sum(1 for n in nodes if node_eligible(pod_spec, n, extra))
            groups.append(_template_group(obj, template, pods, pods))
        elif kind in ("Prometheus", "Alertmanager") and _is_monitoring(obj):
            main = "prometheus" if kind == "Prometheus" else "alertmanager"
            pods = int(spec.get("replicas", 1)) * int(spec.get("shards", 1) or 1)
            template = {
                "metadata": spec.get("podMetadata") or {},
                "spec": _operator_pod(obj, main, config_reloader),
            }
            groups.append(_template_group(obj, template, pods, pods))
        elif kind == "Cluster" and _is_cnpg(obj):
            pods = int(spec.get("instances", 1))
            template = {
                "metadata": spec.get("inheritedMetadata") or {},
                "spec": _cnpg_pod(obj),
            }
            groups.append(_template_group(obj, template, pods, pods))
        elif arc.is_runner_set(obj):
            least, most = arc.runner_bounds(obj)
            groups.append(_template_group(obj, spec.get("template") or {}, least, most))
    return groups


def _is_monitoring(obj: Obj) -> bool:
    return str(obj.get("apiVersion", "")).startswith("monitoring.coreos.com/")


def _is_cnpg(obj: Obj) -> bool:
    return str(obj.get("apiVersion", "")).startswith("postgresql.cnpg.io/")


def _runtime_class_tolerations(objects: Iterable[Obj]) -> dict[str, list[Obj]]:
    return {
        str((o.get("metadata") or {}).get("name")): list(
            (o.get("scheduling") or {}).get("tolerations") or []
        )
        for o in objects
        if o.get("kind") == "RuntimeClass"
    }


def _runtime_class_overhead(objects: Iterable[Obj]) -> dict[str, Resources]:
    return {
        str((o.get("metadata") or {}).get("name")): _resource_list(
            (o.get("overhead") or {}).get("podFixed")
        )
        for o in objects
        if o.get("kind") == "RuntimeClass"
    }


def _claim_template_storage(template: Obj) -> tuple[Fraction, tuple[str, ...]]:
    spec = template.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", 0)
    return parse_quantity(storage), tuple(spec.get("accessModes") or ())


def claim_groups(objects: Sequence[Obj]) -> list[ClaimGroup]:
    """Every PersistentVolumeClaim the objects are or make (StatefulSet templates x replicas)."""
    hpas = _hpa_bounds(objects)
    claims: list[ClaimGroup] = []
    for obj in objects:
        kind = obj.get("kind")
        spec = obj.get("spec") or {}
        if kind == "PersistentVolumeClaim":
            storage, modes = _claim_template_storage(obj)
            claims.append(ClaimGroup(ref(obj), _ns(obj), storage, 1, modes))
        elif kind == "StatefulSet":
            replicas, _ = _scaled(obj, hpas)
            for template in spec.get("volumeClaimTemplates") or []:
                storage, modes = _claim_template_storage(template)
                claims.append(ClaimGroup(ref(obj), _ns(obj), storage, replicas, modes))
        elif kind in ("Prometheus", "Alertmanager") and _is_monitoring(obj):
            template = (spec.get("storage") or {}).get("volumeClaimTemplate")
            if template:
                storage, modes = _claim_template_storage(template)
                pods = int(spec.get("replicas", 1)) * int(spec.get("shards", 1) or 1)
                claims.append(ClaimGroup(ref(obj), _ns(obj), storage, pods, modes))
        elif kind == "Cluster" and _is_cnpg(obj):
            for key in ("storage", "walStorage"):
                size = (spec.get(key) or {}).get("size")
                if size:
                    instances = int(spec.get("instances", 1))
                    claims.append(ClaimGroup(ref(obj), _ns(obj), parse_quantity(size), instances))
    return claims


# --------------------------------------------------------------------------- containers and pods


@dataclass(frozen=True)
class ContainerDefaults:
    """A namespace's LimitRange `Container` defaults."""

    limits: Resources = field(default_factory=dict)
    requests: Resources = field(default_factory=dict)


def limit_range_defaults(objects: Iterable[Obj]) -> dict[str, ContainerDefaults]:
    """Per namespace, the LimitRange `Container` defaults (`default` falls back to `max`,
    `defaultRequest` to `default`, then to `min`, as the API server defaults the item)."""
    result: dict[str, ContainerDefaults] = {}
    for obj in objects:
        if obj.get("kind") != "LimitRange":
            continue
        for item in (obj.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            # SetDefaults_LimitRangeItem (pkg/apis/core/v1/defaults.go): default <- max,
            # then defaultRequest <- default, then defaultRequest <- min.
            limits = {**_resource_list(item.get("max")), **_resource_list(item.get("default"))}
            requests = {
                **_resource_list(item.get("min")),
                **limits,
                **_resource_list(item.get("defaultRequest")),
            }
            previous = result.get(_ns(obj), ContainerDefaults())
            result[_ns(obj)] = ContainerDefaults(
                limits={**previous.limits, **limits}, requests={**previous.requests, **requests}
            )
    return result


@dataclass(frozen=True)
class Container:
    """A container's resources after API defaulting and LimitRange defaults."""

    name: str
    requests: Resources
    limits: Resources
    sidecar: bool = False


def effective_container(raw: Obj, defaults: ContainerDefaults | None) -> Container:
    """Request/limit as admitted: request = limit where only a limit is set (API
    defaulting, pkg/apis/core/v1/defaults.go), then LimitRange defaults for what is unset."""
    resources = raw.get("resources") or {}
    limits = _resource_list(resources.get("limits"))
    requests = {**limits, **_resource_list(resources.get("requests"))}
    if defaults is not None:
        limits = {**defaults.limits, **limits}
        requests = {**defaults.requests, **requests}
    return Container(
        name=str(raw.get("name", "")),
        requests=requests,
        limits=limits,
        sidecar=raw.get("restartPolicy") == "Always",
    )


def _add(total: Resources, extra: Mapping[str, Fraction]) -> None:
    for name, value in extra.items():
        total[name] = total.get(name, Fraction(0)) + value


def _maximum(total: Resources, other: Mapping[str, Fraction]) -> None:
    for name, value in other.items():
        total[name] = max(total.get(name, Fraction(0)), value)


def pod_totals(
    containers: Sequence[Container], init_containers: Sequence[Container], which: str
) -> Resources:
    """Effective pod requests or limits (`which`), component-helpers `PodRequests`:
    max(sum(containers) + sum(sidecars), each init container + sidecars before it)."""
    total: Resources = {}
    for container in containers:
        _add(total, getattr(container, which))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for container in init_containers:
        values: Mapping[str, Fraction] = getattr(container, which)
        if container.sidecar:
            _add(total, values)
            _add(sidecars, values)
            _maximum(init_peak, sidecars)
        else:
            running = dict(sidecars)
            _add(running, values)
            _maximum(init_peak, running)
    _maximum(total, init_peak)
    return total


def _injected(pod_meta: Obj, namespace: Obj | None) -> bool:
    pod_value = ((pod_meta.get("annotations") or {}).get("linkerd.io/inject") or "").lower()
    if pod_value:
        return pod_value == "enabled"
    if namespace is None:
        return False
    meta = namespace.get("metadata") or {}
    values = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
    return str(values.get("linkerd.io/inject", "")).lower() == "enabled"


def _proxy_containers(
    proxy: LinkerdProxy, defaults: ContainerDefaults | None
) -> tuple[list[Container], list[Container]]:
    """(extra containers, extra init containers, in order before the pod's own)."""

    def make(name: str, requests: Resources, limits: Resources, sidecar: bool) -> Container:
        raw = {
            "name": name,
            "resources": {"requests": requests, "limits": limits},
            **({"restartPolicy": "Always"} if sidecar else {}),
        }
        return effective_container(raw, defaults)

    inits: list[Container] = []
    if proxy.cni:
        inits.append(make("linkerd-network-validator", proxy.requests, proxy.limits, False))
    else:
        inits.append(make("linkerd-init", proxy.init_requests, proxy.init_limits, False))
    main = make("linkerd-proxy", proxy.requests, proxy.limits, proxy.native_sidecar)
    if proxy.native_sidecar:
        return [], [*inits, main]
    return [main], inits


# --------------------------------------------------------------------------- demand


COMPUTE_KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
_CONSTRAINED = {
    "cpu": ("requests", "cpu"),
    "memory": ("requests", "memory"),
    "requests.cpu": ("requests", "cpu"),
    "requests.memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
}


@dataclass
class Demand:
    """What a namespace's pods and claims ask for, as quota admission counts it."""

    namespace: str
    totals: Resources = field(default_factory=dict)
    contributors: dict[str, dict[str, Fraction]] = field(default_factory=dict)
    missing: dict[str, set[str]] = field(default_factory=dict)
    """Per object, the compute resources (`requests.cpu`, `limits.memory`, ...) some
    container of its pods leaves unset after defaulting."""

    def add(self, resource: str, source: str, amount: Fraction) -> None:
        """Count `amount` of `resource` for the object `source`."""
        self.totals[resource] = self.totals.get(resource, Fraction(0)) + amount
        by_source = self.contributors.setdefault(resource, {})
        by_source[source] = by_source.get(source, Fraction(0)) + amount

    def top(self, resource: str, n: int = 3) -> list[tuple[str, Fraction]]:
        """The `n` biggest contributors to `resource`."""
        items = self.contributors.get(resource, {}).items()
        return sorted(items, key=lambda kv: (-kv[1], kv[0]))[:n]


def _namespaces(objects: Iterable[Obj]) -> dict[str, Obj]:
    return {
        str((o.get("metadata") or {}).get("name")): o
        for o in objects
        if o.get("kind") == "Namespace"
    }


def _group_containers(
    group: PodGroup,
    defaults: ContainerDefaults | None,
    proxy: LinkerdProxy | None,
    namespace: Obj | None,
) -> tuple[list[Container], list[Container]]:
    spec = group.spec
    containers = [effective_container(c, defaults) for c in spec.get("containers") or []]
    inits = [effective_container(c, defaults) for c in spec.get("initContainers") or []]
    if proxy is not None and _injected(group.metadata, namespace):
        extra, extra_inits = _proxy_containers(proxy, defaults)
        containers = [*containers, *extra]
        inits = [*extra_inits, *inits]
    return containers, inits


def _missing(containers: Iterable[Container]) -> set[str]:
    missing: set[str] = set()
    for container in containers:
        for key in COMPUTE_KEYS:
            kind, name = _CONSTRAINED[key]
            if name not in getattr(container, kind):
                missing.add(key)
    return missing


def _group_usage(
    group: PodGroup,
    count: int,
    containers: Sequence[Container],
    inits: Sequence[Container],
    overhead: Mapping[str, Fraction],
) -> Resources:
    """Quota usage of `count` pods of a group: pods, requests.<r>, limits.<r>."""
    requests = pod_totals(containers, inits, "requests")
    limits = pod_totals(containers, inits, "limits")
    _add(requests, overhead)
    _add(limits, {k: v for k, v in overhead.items() if k in limits})
    usage: Resources = {"pods": Fraction(count)}
    usage.update({f"requests.{name}": value * count for name, value in requests.items()})
    usage.update({f"limits.{name}": value * count for name, value in limits.items()})
    return usage


def namespace_demand(
    objects: Sequence[Obj],
    nodes: Sequence[Node],
    *,
    linkerd_proxy: LinkerdProxy | None = None,
    config_reloader: Mapping[str, Any] = DEFAULT_CONFIG_RELOADER,
    peak: bool = False,
    helm_hooks: bool = False,
) -> dict[str, Demand]:
    """Per namespace, what all pods and claims ask for; `peak` counts HPAs at maxReplicas.

    Helm hook Jobs (`helm.sh/hook`) run only during an install or upgrade and are deleted
    once they succeed: left out unless `helm_hooks`, which adds, per namespace and
    resource, the largest hook Job (hooks run one at a time).

    Keys: `requests.<r>` / `limits.<r>` for every resource a pod requests or limits
    (cpu, memory, nvidia.com/gpu, ...), `pods`, `persistentvolumeclaims`, `requests.storage`.
    """
    defaults = limit_range_defaults(objects)
    namespaces = _namespaces(objects)
    overheads = _runtime_class_overhead(objects)
    result: dict[str, Demand] = {}
    largest_hook: dict[tuple[str, str], tuple[Fraction, str]] = {}

    def demand(ns: str) -> Demand:
        return result.setdefault(ns, Demand(namespace=ns))

    for group in pod_groups(objects, nodes, config_reloader=config_reloader):
        count = group.peak if peak else group.count
        ns_demand = demand(group.namespace)
        containers, inits = _group_containers(
            group, defaults.get(group.namespace), linkerd_proxy, namespaces.get(group.namespace)
        )
        lacking = _missing([*containers, *inits])
        if lacking:
            ns_demand.missing.setdefault(group.ref, set()).update(lacking)
        if count <= 0 or (group.hook and not helm_hooks):
            continue
        overhead = overheads.get(str(group.spec.get("runtimeClassName")), {})
        usage = _group_usage(group, count, containers, inits, overhead)
        for resource, amount in usage.items():
            if not group.hook:
                ns_demand.add(resource, group.ref, amount)
            elif amount > largest_hook.get((group.namespace, resource), (Fraction(0), ""))[0]:
                largest_hook[(group.namespace, resource)] = (amount, group.ref)
    for (ns, resource), (amount, source) in sorted(largest_hook.items()):
        demand(ns).add(resource, source, amount)
    for claim in claim_groups(objects):
        ns_demand = demand(claim.namespace)
        ns_demand.add("persistentvolumeclaims", claim.ref, Fraction(claim.count))
        ns_demand.add("requests.storage", claim.ref, claim.storage * claim.count)
    return result


# --------------------------------------------------------------------------- quota problems


def quotas(objects: Iterable[Obj]) -> dict[str, Resources]:
    """Per namespace, the tightest `spec.hard` of its ResourceQuotas (normalised keys)."""
    result: dict[str, Resources] = defaultdict(dict)
    for obj in objects:
        if obj.get("kind") != "ResourceQuota":
            continue
        for name, value in ((obj.get("spec") or {}).get("hard") or {}).items():
            key = {"cpu": "requests.cpu", "memory": "requests.memory"}.get(name, name)
            hard = parse_quantity(value)
            current = result[_ns(obj)].get(key)
            result[_ns(obj)][key] = hard if current is None else min(current, hard)
    return dict(result)


def _contributors(demand: Demand, resource: str) -> str:
    return ", ".join(
        f"{source} {format_quantity(resource, amount)}" for source, amount in demand.top(resource)
    )


def _overages(
    demands: Mapping[str, Demand], hard_by_ns: Mapping[str, Resources]
) -> list[tuple[str, str, Fraction, Fraction]]:
    """(namespace, resource, demand, hard) wherever demand exceeds the quota."""
    found: list[tuple[str, str, Fraction, Fraction]] = []
    for ns in sorted(hard_by_ns):
        demand = demands.get(ns, Demand(namespace=ns))
        for resource, hard in sorted(hard_by_ns[ns].items()):
            used = demand.totals.get(resource, Fraction(0))
            if used > hard:
                found.append((ns, resource, used, hard))
    return found


def _over_line(demand: Demand, resource: str, used: Fraction, hard: Fraction, label: str) -> str:
    return (
        f"{label}{demand.namespace}: {resource} {format_quantity(resource, used)} > hard "
        f"{format_quantity(resource, hard)} (top: {_contributors(demand, resource)})"
    )


def _over_lines(
    demands: Mapping[str, Demand], hard_by_ns: Mapping[str, Resources], label: str
) -> list[str]:
    return [
        _over_line(demands[ns], resource, used, hard, label)
        for ns, resource, used, hard in _overages(demands, hard_by_ns)
    ]


def _missing_lines(demands: Mapping[str, Demand], hard_by_ns: Mapping[str, Resources]) -> list[str]:
    lines: list[str] = []
    for ns in sorted(hard_by_ns):
        named = {k for k in hard_by_ns[ns] if k in COMPUTE_KEYS}
        demand = demands.get(ns)
        if demand is None:
            continue
        for source, lacking in sorted(demand.missing.items()):
            rejected = sorted(named & lacking)
            if rejected:
                lines.append(
                    f"{ns}: {source} pods rejected by the quota: a container sets no "
                    f"{', '.join(rejected)} and no LimitRange default supplies it"
                )
    return lines


PEAK_LABEL = "PEAK (HPAs at maxReplicas) "
HOOKS_LABEL = "DURING HELM HOOKS (steady + the largest hook Job) "


@dataclass(frozen=True)
class QuotaReport:
    """Quota findings, each list clearly apart: steady state (HPAs at min, no Helm hooks),
    peak (HPAs at max), and during a release install/upgrade (steady + a hook Job). The
    last two list only what is over quota and more than in steady state."""

    steady: list[str]
    peak: list[str]
    during_hooks: list[str]


def _worse_than(
    scenario: Mapping[str, Demand],
    steady: Mapping[str, Demand],
    hard: Mapping[str, Resources],
    label: str,
) -> list[str]:
    return [
        _over_line(scenario[ns], resource, used, limit, label)
        for ns, resource, used, limit in _overages(scenario, hard)
        if used > steady.get(ns, Demand(namespace=ns)).totals.get(resource, Fraction(0))
    ]


def quota_report(
    objects: Sequence[Obj],
    nodes: Sequence[Node],
    *,
    linkerd_proxy: LinkerdProxy | None = None,
    config_reloader: Mapping[str, Any] = DEFAULT_CONFIG_RELOADER,
) -> QuotaReport:
    """Steady-state quota problems, and the peak and Helm-hook ones they do not already show."""
    hard = quotas(objects)
    options: dict[str, Any] = {"linkerd_proxy": linkerd_proxy, "config_reloader": config_reloader}
    steady = namespace_demand(objects, nodes, **options)
    at_peak = namespace_demand(objects, nodes, peak=True, **options)
    with_hooks = namespace_demand(objects, nodes, helm_hooks=True, **options)
    return QuotaReport(
        steady=_missing_lines(steady, hard) + _over_lines(steady, hard, ""),
        peak=_worse_than(at_peak, steady, hard, PEAK_LABEL),
        during_hooks=_worse_than(with_hooks, steady, hard, HOOKS_LABEL),
    )


def quota_problems(
    objects: Sequence[Obj],
    nodes: Sequence[Node],
    *,
    linkerd_proxy: LinkerdProxy | None = None,
    config_reloader: Mapping[str, Any] = DEFAULT_CONFIG_RELOADER,
    peak: bool = False,
) -> list[str]:
    """One line per namespace and resource whose demand exceeds its ResourceQuota, plus
    pods the quota rejects for an unset compute resource; `peak` counts HPAs at max."""
    hard = quotas(objects)
    demands = namespace_demand(
        objects, nodes, linkerd_proxy=linkerd_proxy, config_reloader=config_reloader, peak=peak
    )
    label = PEAK_LABEL if peak else ""
    return _missing_lines(demands, hard) + _over_lines(demands, hard, label)


# --------------------------------------------------------------------------- rollouts


def _surge(strategy: Obj, replicas: int) -> int:
    rolling = strategy.get("rollingUpdate") or {}
    value = rolling.get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(Fraction(value[:-1]) * replicas / 100)
    return int(value)


def rollout_problems(objects: Sequence[Obj]) -> list[str]:
    """Deployments mounting a ReadWriteOnce(Pod) claim that roll with a surge pod: the new
    pod cannot attach the volume on another node, so the rollout hangs; use Recreate."""
    claims = {
        (_ns(o), str((o.get("metadata") or {}).get("name"))): tuple(
            (o.get("spec") or {}).get("accessModes") or ()
        )
        for o in objects
        if o.get("kind") == "PersistentVolumeClaim"
    }
    lines: list[str] = []
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        spec = obj.get("spec") or {}
        strategy = spec.get("strategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            continue
        surge = _surge(strategy, int(spec.get("replicas", 1)) or 1)
        if surge <= 0:
            continue
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        for volume in pod_spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            modes = claims.get((_ns(obj), str(claim)), ())
            single = sorted({"ReadWriteOnce", "ReadWriteOncePod"} & set(modes))
            if claim and single:
                lines.append(
                    f"{ref(obj)}: RollingUpdate with maxSurge {surge} mounts "
                    f"PersistentVolumeClaim {claim} ({', '.join(single)}); use strategy Recreate"
                )
    return lines


# --------------------------------------------------------------------------- images


_POD_TEMPLATE_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job")


def _pod_specs(obj: Obj) -> Iterator[Obj]:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield spec
    elif kind in (*_POD_TEMPLATE_KINDS, "ReplicationController"):
        yield (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield (job.get("template") or {}).get("spec") or {}
    elif kind in ("Prometheus", "Alertmanager", "ThanosRuler", "PrometheusAgent"):
        yield spec  # spec.containers / initContainers are merged into the operator's pod
    elif arc.is_runner_set(obj):
        yield (spec.get("template") or {}).get("spec") or {}
        yield (spec.get("listenerTemplate") or {}).get("spec") or {}


def image_refs(obj: Obj) -> list[tuple[str, str]]:
    """(where, image) for every image an object names."""
    found: list[tuple[str, str]] = []
    for pod_spec in _pod_specs(obj):
        for key in ("containers", "initContainers", "ephemeralContainers"):
            for container in pod_spec.get(key) or []:
                if (_is_monitoring(obj) or arc.is_runner_set(obj)) and "image" not in container:
                    continue  # a patch of an operator-made container, which has its image
                where = f"{key}[{container.get('name')}]"
                found.append((where, str(container.get("image") or "")))
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Cluster" and _is_cnpg(obj) and "imageName" in spec:
        found.append(("spec.imageName", str(spec["imageName"])))
    if _is_monitoring(obj) and spec.get("image"):
        found.append(("spec.image", str(spec["image"])))
    return found


def image_pinned(image: str) -> bool:
    """A digest, or a tag that is neither empty nor `latest`."""
    if "@sha256:" in image or "@sha512:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.split(":", 1)[1]
    return bool(tag) and tag != "latest"


def image_problems(objects: Sequence[Obj]) -> list[str]:
    """Every image reference that is not pinned to a tag (other than latest) or a digest."""
    return [
        f"{ref(obj)} {where}: image {image!r} is not pinned (no tag, `latest`, or empty)"
        for obj in objects
        for where, image in image_refs(obj)
        if not image_pinned(image)
    ]


def images(objects: Sequence[Obj]) -> list[str]:
    """Distinct image references, sorted."""
    return sorted({image for obj in objects for _, image in image_refs(obj) if image})


# --------------------------------------------------------------------------- loading a render

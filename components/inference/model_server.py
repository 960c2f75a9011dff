"""Inference: one vLLM model server per in-cluster model of the catalog.

For each model placed on cluster GPUs it deploys, in the `inference` namespace, a model
cache PVC (so a restart does not download the weights again), a Deployment of the pinned
vLLM image with arguments derived from config and the fit estimate, and a Service at the
name every other area uses (`endpoints.model_service_name`). Gated models read the
Hugging Face token from one Secret. Models on LAN GPU hosts get no pods: the cluster area
exposes the host as a Service, and the LLM gateway's health checks watch it. The server runs
as UID 10001 with a read-only root file system: its caches live on the model cache PVC,
home and temp on emptyDirs, and a gated model's token is a mounted file (`HF_TOKEN_PATH`).

Scheduling: the `nvidia` RuntimeClass, `nvidia.com/gpu` limits equal to the tensor-parallel
size, a node selector on the GPU class label (`llm-platform.io/gpu-class`, set on GPU
nodes by the cluster area) and a toleration for the GPU taint (`nvidia.com/gpu`,
NoSchedule). Updates never take the last ready replica away: with a spare GPU where the
new pod can mount the cache the rollout surges one new pod first (`maxUnavailable: 0`,
`maxSurge: 1`); without one the server restarts in place (`Recreate`), which
docs/inference.md says. A GPU class (or all its nodes) or LAN host in maintenance scales
its model servers to zero (the gateway then serves the cloud fallback); a single node in
maintenance is kept out by node affinity and its pods are dropped if the rest cannot hold
them. Metrics: `prometheus.io/*` pod annotations (no ServiceMonitor, so nothing here
needs the Prometheus CRDs). Creates Kubernetes resources only, all through the explicit
provider in `InferenceArgs`.

`pulumi up` must not time out on a cold start: each Deployment's await timeout comes from
its weight size (download at a home-uplink rate, load from disk, compile and capture).

A model with `autoscaling` also gets a KEDA ScaledObject (`scaling.py`, after the KEDA
release in `keda_ready`); its Deployment leaves `replicas` to KEDA and, when it may sit at
zero, is not awaited (`deployment_annotations`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.config import GpuSharing, LocalModel, PlatformConfig
from components.config.cluster import GPU_CLASS_LABEL, GPU_TAINT_KEY
from components.config.names import kubernetes_name
from components.inference.endpoints import (
    INFERENCE_NAMESPACE,
    MODEL_SERVER_COMPONENT,
    VLLM_PORT,
    model_service_name,
)
from components.inference.fit import GIB, Fit
from components.inference.placement import Pod, pack, pods_of, replicas_placed
from components.inference.scaling import (
    SCALED_OBJECT_API,
    ScalingPlan,
    scaled_object_annotations,
    scaled_object_spec,
    scaling_plan,
)
from components.inference.vllm_args import MODEL_CACHE_PATH, vllm_args
from components.labels import selector_labels, standard_labels
from components.pod_security import NON_ROOT_UID, restricted_pod_security
from components.workloads import Workload

HF_TOKEN_SECRET = "huggingface-token"  # noqa: S105 (a Secret's name)
HF_TOKEN_KEY = "token"  # noqa: S105 (a key name in that Secret)
HF_TOKEN_DIR = "/var/run/secrets/huggingface"  # noqa: S105 (where that Secret is mounted)
RUN_AS = NON_ROOT_UID
"""UID and GID of the server: the vLLM image's Python and packages are world-readable and
nothing of it needs root once its caches point at writable volumes."""
HOME_PATH = "/home/vllm"
TMP_PATH = "/tmp"  # noqa: S108 (an emptyDir)

DOWNLOAD_BYTES_PER_SECOND = 25e6
"""A conservative 200 Mbit/s home uplink for the first download."""
LOAD_BYTES_PER_SECOND = 500e6
"""Reading safetensors from a local SSD into GPU memory."""
STARTUP_FIXED_SECONDS = 180
"""Engine start, torch.compile and CUDA graph capture."""
PROBE_PERIOD_SECONDS = 10


@dataclass(frozen=True)
class ServerPlan:
    """What one model server needs, derived from config (pure; tested on its own)."""

    name: str
    """The model's Kubernetes name (`names.kubernetes_name` of its served name)."""
    service: str
    image: str
    replicas: int
    fit: Fit
    args: tuple[str, ...]
    cache_gib: int
    memory_gib: int
    startup_seconds: int
    rolling: bool
    """True when a spare GPU lets a new pod start before the old one stops."""
    avoid_nodes: tuple[str, ...] = ()
    """Nodes of the class in maintenance; the pods are kept off them."""
    scaling: ScalingPlan | None = None
    """How the server follows demand, for a model with `autoscaling`: KEDA owns its
    replica count (at most `replicas`) and `replicas` is left out of the Deployment."""


def startup_seconds(fit: Fit) -> int:
    """Worst-case seconds from pod start to ready: download, load, compile."""
    size = fit.weights_bytes
    return math.ceil(
        size / DOWNLOAD_BYTES_PER_SECOND + size / LOAD_BYTES_PER_SECOND + STARTUP_FIXED_SECONDS
    )


def _class_nodes(config: PlatformConfig, gpu_class: str) -> dict[str, tuple[int, bool]]:
    """Nodes carrying a GPU class: name -> (schedulable GPUs, in maintenance)."""
    spec = config.cluster.gpu_classes[gpu_class]
    per_gpu = spec.time_slicing_replicas if spec.sharing is GpuSharing.TIME_SLICING else 1
    return {
        name: (node.gpu.count * per_gpu, node.maintenance)
        for name, node in sorted(config.cluster.nodes.items())
        if node.gpu is not None and node.gpu.gpu_class == gpu_class
    }


def _class_demand(config: PlatformConfig, gpu_class: str) -> dict[str, tuple[int, int]]:
    """Models placed on a GPU class: name -> (gpu_count, most replicas it runs)."""
    return {
        name: (m.gpu_count, m.ceiling_replicas)
        for name, m in sorted(config.inference.models.items())
        if m.placement == "cluster" and m.gpu_class == gpu_class
    }


def maintenance_nodes(config: PlatformConfig, gpu_class: str) -> list[str]:
    """Nodes of a GPU class switched to maintenance, sorted: pods keep off them."""
    return [n for n, (_, down) in _class_nodes(config, gpu_class).items() if down]


def _node_local(config: PlatformConfig) -> bool:
    return config.inference.cache_access_mode == "ReadWriteOnce"


def class_replicas(config: PlatformConfig, gpu_class: str) -> dict[str, int]:
    """Replicas each model of a GPU class runs on the class's nodes left in service.

    One packing of the whole class: the pods that no longer fit once a node is taken
    out are dropped in the deterministic order of `placement.pods_of` rather than left
    Pending (a Pending pod would hold `pulumi up` until its timeout).
    """
    nodes = {n: gpus for n, (gpus, down) in _class_nodes(config, gpu_class).items() if not down}
    demand = _class_demand(config, gpu_class)
    return replicas_placed(nodes, demand, same_node=_node_local(config))


def running_replicas(config: PlatformConfig, name: str) -> int:
    """Replicas a model runs (an autoscaled one at most): 0 in maintenance, else what the
    nodes left in service hold.

    A class (or every node of it) in maintenance scales its models to zero; a single node
    in maintenance takes its GPUs out (see `class_replicas`).
    """
    model = config.inference.models[name]
    if config.model_in_maintenance(name):
        return 0
    assert model.gpu_class is not None
    return class_replicas(config, model.gpu_class)[name]


def has_spare_gpu(config: PlatformConfig, model_name: str) -> bool:
    """Whether one more pod of this model fits beside every running pod (a rollout surge).

    With node-local ReadWriteOnce caches (k3s `local-path`) the surge pod must land on
    the node holding the cache, so the spare GPU must be there; a ReadWriteMany cache
    can be mounted on any node of the class.
    """
    model = config.inference.models[model_name]
    assert model.gpu_class is not None
    nodes = {
        n: gpus for n, (gpus, down) in _class_nodes(config, model.gpu_class).items() if not down
    }
    running = class_replicas(config, model.gpu_class)
    demand = {
        n: (gpus, 0 if config.model_in_maintenance(n) else running[n])
        for n, (gpus, _) in _class_demand(config, model.gpu_class).items()
    }
    surge = Pod(gpus=model.gpu_count, model=model_name, replica=demand[model_name][1])
    _, unplaced = pack(nodes, [*pods_of(demand), surge], same_node=_node_local(config))
    return not unplaced


def server_plan(config: PlatformConfig, name: str) -> ServerPlan:
    """The plan of one in-cluster model server."""
    model = config.inference.models[name]
    assert model.gpu_class is not None
    fit = config.model_fit(name)
    assert fit is not None  # validation holds gpu_class to a defined class
    replicas = running_replicas(config, name)
    return ServerPlan(
        name=kubernetes_name(name),
        service=model_service_name(name),
        image=server_image(model),
        replicas=replicas,
        fit=fit,
        args=tuple(vllm_args(name, model, fit)),
        cache_gib=cache_gib(fit),
        memory_gib=math.ceil(fit.weights_bytes / GIB) + 4,
        startup_seconds=startup_seconds(fit),
        rolling=has_spare_gpu(config, name),
        avoid_nodes=tuple(maintenance_nodes(config, model.gpu_class)),
        scaling=(scaling_plan(config, name, replicas) if model.autoscaling is not None else None),
    )


def server_image(model: LocalModel) -> str:
    """The vLLM image a model runs: its pinned `image`, else the project's pin."""
    if model.image is not None:
        return versions.parse_image(model.image).ref
    return versions.VLLM_OPENAI.ref


def cache_gib(fit: Fit) -> int:
    """Size of the weight cache: the weights x 1.3, rounded up to whole GiB.

    The 30% is room for a revision change, whose files download beside the old ones
    before the old snapshot is pruned, plus tokenizer and config files.
    """
    return math.ceil(fit.weights_bytes * 1.3 / GIB)


def cluster_models(config: PlatformConfig) -> list[str]:
    """Names of the models served by pods in the cluster, sorted."""
    return sorted(n for n, m in config.inference.models.items() if m.placement == "cluster")


def _probe(path: str, *, period: int, failures: int) -> k8s.core.v1.ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": "http"},
        "period_seconds": period,
        "timeout_seconds": 5,
        "failure_threshold": failures,
    }


def pod_spec(plan: ServerPlan, model: LocalModel) -> k8s.core.v1.PodSpecArgsDict:
    """The model server's pod: GPU scheduling, probes, cache and shared memory."""
    env: list[k8s.core.v1.EnvVarArgsDict] = [
        {"name": "HF_HOME", "value": MODEL_CACHE_PATH},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        # The root file system is read-only: every cache the engine, torch.compile, Triton
        # and FlashInfer write goes under the model cache (kept across restarts, so a
        # restart skips compilation) or the home emptyDir (the UID has no passwd entry).
        {"name": "HOME", "value": HOME_PATH},
        {"name": "XDG_CACHE_HOME", "value": f"{MODEL_CACHE_PATH}/.cache"},
        {"name": "VLLM_CACHE_ROOT", "value": f"{MODEL_CACHE_PATH}/.cache/vllm"},
        {"name": "TRITON_CACHE_DIR", "value": f"{MODEL_CACHE_PATH}/.cache/triton"},
        {"name": "TMPDIR", "value": TMP_PATH},
    ]
    mounts: list[k8s.core.v1.VolumeMountArgsDict] = [
        {"name": "model-cache", "mount_path": MODEL_CACHE_PATH},
        {"name": "dshm", "mount_path": "/dev/shm"},  # noqa: S108 (shared memory)
        {"name": "home", "mount_path": HOME_PATH},
        {"name": "tmp", "mount_path": TMP_PATH},
    ]
    volumes: list[k8s.core.v1.VolumeArgsDict] = [
        {
            "name": "model-cache",
            "persistent_volume_claim": {"claim_name": f"{plan.service}-cache"},
        },
        # Tensor-parallel workers exchange tensors through shared memory.
        {
            "name": "dshm",
            "empty_dir": {"medium": "Memory", "size_limit": f"{2 * model.gpu_count}Gi"},
        },
        {"name": "home", "empty_dir": {"size_limit": "1Gi"}},
        {"name": "tmp", "empty_dir": {"size_limit": "4Gi"}},
    ]
    if model.gated:
        # huggingface_hub reads the token from the file HF_TOKEN_PATH names.
        env.append({"name": "HF_TOKEN_PATH", "value": f"{HF_TOKEN_DIR}/{HF_TOKEN_KEY}"})
        mounts.append({"name": "hf-token", "mount_path": HF_TOKEN_DIR, "read_only": True})
        volumes.append(
            {
                "name": "hf-token",
                "secret": {
                    "secret_name": HF_TOKEN_SECRET,
                    "items": [{"key": HF_TOKEN_KEY, "path": HF_TOKEN_KEY}],
                    "default_mode": 0o440,
                },
            }
        )
    gpus = str(model.gpu_count)
    spec: k8s.core.v1.PodSpecArgsDict = {
        "runtime_class_name": "nvidia",
        "node_selector": {GPU_CLASS_LABEL: model.gpu_class or ""},
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "automount_service_account_token": False,
        "enable_service_links": False,
        "termination_grace_period_seconds": 60,
        # The cache PVC and the token are group-accessible to this GID.
        "security_context": restricted_pod_security(RUN_AS),
        "containers": [
            {
                "name": "vllm",
                "image": plan.image,
                "args": list(plan.args),
                "env": env,
                "ports": [{"name": "http", "container_port": VLLM_PORT, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": "2", "memory": f"{plan.memory_gib}Gi"},
                    "limits": {
                        "cpu": "8",
                        "memory": f"{plan.memory_gib * 2}Gi",
                        "nvidia.com/gpu": gpus,
                    },
                },
                # Sized for a cold start: the server answers /health only once loaded.
                "startup_probe": _probe(
                    "/health",
                    period=PROBE_PERIOD_SECONDS,
                    failures=math.ceil(plan.startup_seconds / PROBE_PERIOD_SECONDS),
                ),
                "readiness_probe": _probe("/health", period=10, failures=3),
                "liveness_probe": _probe("/health", period=20, failures=3),
                "security_context": {
                    "allow_privilege_escalation": False,
                    "read_only_root_filesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volume_mounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    if plan.avoid_nodes:
        spec["affinity"] = {
            "node_affinity": {
                "required_during_scheduling_ignored_during_execution": {
                    "node_selector_terms": [
                        {
                            "match_expressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "NotIn",
                                    "values": list(plan.avoid_nodes),
                                }
                            ]
                        }
                    ]
                }
            }
        }
    return spec


def cache_claim_spec(
    plan: ServerPlan, config: PlatformConfig
) -> k8s.core.v1.PersistentVolumeClaimSpecArgsDict:
    """The weight cache claim: the configured class and access mode, sized from the weights."""
    spec: k8s.core.v1.PersistentVolumeClaimSpecArgsDict = {
        "access_modes": [config.inference.cache_access_mode],
        "resources": {"requests": {"storage": f"{plan.cache_gib}Gi"}},
    }
    if config.inference.cache_storage_class is not None:
        spec["storage_class_name"] = config.inference.cache_storage_class
    return spec


def _annotated(
    metadata: k8s.meta.v1.ObjectMetaArgsDict, annotations: dict[str, str]
) -> k8s.meta.v1.ObjectMetaArgsDict:
    return {**metadata, "annotations": annotations} if annotations else metadata


def deployment_annotations(plan: ServerPlan) -> dict[str, str]:
    """`pulumi.com/skipAwait` on a server that may run no replica.

    pulumi-kubernetes waits for a Deployment until every PersistentVolumeClaim its pods
    mount is Bound (`provider/pkg/await/deployment.go` `checkPersistentVolumeClaimStatus`);
    a `WaitForFirstConsumer` claim (k3s `local-path`) of a server held at zero never binds,
    so the first `pulumi up` would wait out its timeout. The annotation skips that await
    (`provider/pkg/await/await.go`, `metadata.SkipAwaitLogic`).
    """
    if plan.scaling is not None and plan.scaling.scales_to_zero:
        return {"pulumi.com/skipAwait": "true"}
    return {}


def deployment_strategy(plan: ServerPlan) -> k8s.apps.v1.DeploymentStrategyArgsDict:
    """Surge onto a spare GPU when there is one; otherwise restart in place."""
    if plan.rolling:
        return {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 0, "max_surge": 1}}
    return {"type": "Recreate"}


@dataclass(frozen=True, kw_only=True)
class InferenceArgs:
    """Inputs of the inference area."""

    config: PlatformConfig
    provider: k8s.Provider
    namespace: pulumi.Input[str] = INFERENCE_NAMESPACE
    gpu_ready: Sequence[pulumi.Resource] = ()
    """The RuntimeClass and device plugin: pods wait until GPUs are schedulable."""
    huggingface_token: pulumi.Output[str] | None = None
    """Secret token for gated models."""
    keda_ready: Sequence[pulumi.Resource] = ()
    """The KEDA release (its CRDs): ScaledObjects of autoscaled models wait for it."""
    prometheus_url: str | None = None
    """Where KEDA queries the scaling metrics; required when a model autoscales."""


class Inference(pulumi.ComponentResource):
    """vLLM model servers for the in-cluster models of the catalog."""

    services: dict[str, str]
    """In-cluster Service name of each in-cluster model."""
    deployments: dict[str, k8s.apps.v1.Deployment]
    workloads: list[Workload]
    """The model servers, for resource recommendations."""

    def __init__(
        self, name: str, args: InferenceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:inference:Inference", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.services = {}
        self.deployments = {}
        self.workloads = []

        token_secret: list[pulumi.Resource] = []
        gated = [n for n in cluster_models(config) if config.inference.models[n].gated]
        if gated:
            if args.huggingface_token is None:
                raise ValueError("Inference: gated models need the huggingface_token secret")
            token_secret.append(
                k8s.core.v1.Secret(
                    f"{name}-hf-token",
                    metadata={
                        "name": HF_TOKEN_SECRET,
                        "namespace": args.namespace,
                        "labels": standard_labels(name=HF_TOKEN_SECRET, component="inference"),
                    },
                    type="Opaque",
                    string_data={HF_TOKEN_KEY: args.huggingface_token},
                    opts=child,
                )
            )

        for model_name in cluster_models(config):
            model = config.inference.models[model_name]
            plan = server_plan(config, model_name)
            self.services[model_name] = plan.service
            self.workloads.append(
                Workload(kind="Deployment", namespace=INFERENCE_NAMESPACE, name=plan.service)
            )
            self._model_server(name, plan, model, args, child, token_secret)

        self.register_outputs({"services": self.services})

    def _model_server(
        self,
        name: str,
        plan: ServerPlan,
        model: LocalModel,
        args: InferenceArgs,
        child: pulumi.ResourceOptions,
        token_secret: list[pulumi.Resource],
    ) -> None:
        labels = standard_labels(
            name=plan.service, component=MODEL_SERVER_COMPONENT, instance=plan.name
        )
        selector = selector_labels(name=plan.service, instance=plan.name)
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": plan.service,
            "namespace": args.namespace,
            "labels": labels,
        }
        cache_metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": f"{plan.service}-cache",
            "namespace": args.namespace,
            "labels": labels,
        }
        prefix = f"{name}-{plan.name}"

        cache = k8s.core.v1.PersistentVolumeClaim(
            f"{prefix}-cache",
            metadata=cache_metadata,
            spec=cache_claim_spec(plan, args.config),
            # The cache is rebuildable, but losing it costs a full download.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(protect=args.config.is_prod)
            ),
        )
        annotations = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(VLLM_PORT),
            "prometheus.io/path": "/metrics",
        }
        if not model.meshed:
            annotations["linkerd.io/inject"] = "disabled"
        timeout = f"{plan.startup_seconds + 300}s"
        spec: k8s.apps.v1.DeploymentSpecArgsDict = {
            "revision_history_limit": 3,
            "selector": {"match_labels": selector},
            "strategy": deployment_strategy(plan),
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": pod_spec(plan, model),
            },
        }
        if plan.scaling is None:
            # Left out where KEDA owns it: with server-side apply a field Pulumi does not
            # send is one it does not manage, so `pulumi up` never resets the autoscaler's.
            spec = {"replicas": plan.replicas, **spec}
        self.deployments[plan.name] = k8s.apps.v1.Deployment(
            f"{prefix}-server",
            metadata=_annotated(metadata, deployment_annotations(plan)),
            spec=spec,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[cache, *token_secret, *args.gpu_ready],
                    custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                ),
            ),
        )
        k8s.core.v1.Service(
            f"{prefix}-service",
            metadata=metadata,
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": VLLM_PORT, "target_port": "http"}],
            },
            opts=child,
        )
        if model.ceiling_replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{prefix}-pdb",
                metadata=metadata,
                spec={"max_unavailable": 1, "selector": {"match_labels": selector}},
                opts=child,
            )
        if plan.scaling is not None:
            if args.prometheus_url is None:
                raise ValueError("Inference: an autoscaled model needs prometheus_url")
            k8s.apiextensions.CustomResource(
                f"{prefix}-scaler",
                api_version=SCALED_OBJECT_API,
                kind="ScaledObject",
                metadata=_annotated(metadata, scaled_object_annotations(plan.scaling)),
                spec=scaled_object_spec(plan.scaling, args.prometheus_url),
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        depends_on=[self.deployments[plan.name], *args.keda_ready]
                    ),
                ),
            )

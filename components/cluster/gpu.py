"""GpuSupport: what makes `nvidia.com/gpu` schedulable on the cluster's GPU nodes.

Creates, only when the config lists GPU nodes (otherwise nothing, and `ready` is empty):

* the RuntimeClass `nvidia` (handler `nvidia`, the runtime k3s registers in containerd
  when it finds the NVIDIA container toolkit on a node); pods using it tolerate the GPU
  taint automatically;
* the NVIDIA device plugin (Helm, pinned in `components.versions`) in `kube-system`,
  running on nodes carrying the GPU class label, tolerating the GPU taint, with one named
  config per GPU class on the nodes: a time-sliced class offers each GPU as
  `time_slicing_replicas` schedulable GPUs, the others one each. Nodes pick their class's
  config by the `nvidia.com/device-plugin.config` label (set at bootstrap, or by
  `files/cluster/label-nodes.sh` on an existing cluster).

Exposes `ready`: the RuntimeClass and the release, for model servers to depend on.
Every child uses the explicit Kubernetes provider of `GpuSupportArgs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import versions
from components.config import ClusterConfig, GpuClass, GpuSharing
from components.config.cluster import GPU_CLASS_LABEL, GPU_TAINT_KEY
from components.helm import pinned_release
from components.labels import standard_labels

RUNTIME_CLASS = "nvidia"
DEVICE_PLUGIN_NAMESPACE = "kube-system"
"""Exempt from the cluster's Pod Security defaults: the plugin needs host paths."""

GPU_TOLERATION: dict[str, str] = {
    "key": GPU_TAINT_KEY,
    "operator": "Exists",
    "effect": "NoSchedule",
}


def device_plugin_config(gpu_class: GpuClass) -> str:
    """The device plugin's config file for one GPU class (pure)."""
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "none"}}
    if gpu_class.sharing is GpuSharing.TIME_SLICING:
        config["sharing"] = {
            "timeSlicing": {
                "resources": [
                    {"name": "nvidia.com/gpu", "replicas": gpu_class.time_slicing_replicas}
                ]
            }
        }
    text: str = yaml.safe_dump(config, sort_keys=True)
    return text


def device_plugin_values(config: ClusterConfig) -> dict[str, Any]:
    """Helm values of the device plugin for the GPU classes found on nodes (pure)."""
    classes = sorted({n.gpu.gpu_class for n in config.nodes.values() if n.gpu is not None})
    if not classes:
        raise ValueError("device plugin values need at least one GPU node")
    # Nodes without the config label (an unlabelled existing node) get an unshared class's
    # config when there is one: never more slices than the hardware was planned for.
    unshared = [c for c in classes if config.gpu_classes[c].sharing is GpuSharing.NONE]
    return {
        "runtimeClassName": RUNTIME_CLASS,
        "priorityClassName": "system-node-critical",
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": GPU_CLASS_LABEL, "operator": "Exists"}]}
                    ]
                }
            }
        },
        "tolerations": [GPU_TOLERATION, {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "config": {
            "map": {c: device_plugin_config(config.gpu_classes[c]) for c in classes},
            "default": (unshared or classes)[0],
        },
        "gfd": {"enabled": False},
        "failOnInitError": True,
    }


@dataclass(frozen=True, kw_only=True)
class GpuSupportArgs:
    """Inputs of GPU support."""

    config: ClusterConfig
    provider: k8s.Provider
    """The cluster's provider; in bootstrap mode it exists only once every node joined."""
    helm_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The stack's `helm_values`, merged last into the device plugin's release."""


class GpuSupport(pulumi.ComponentResource):
    """The `nvidia` RuntimeClass and the NVIDIA device plugin, when GPU nodes exist."""

    ready: list[pulumi.Resource]
    device_plugin: k8s.helm.v3.Release | None

    def __init__(
        self, name: str, args: GpuSupportArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:cluster:GpuSupport", name, None, opts)
        self.ready = []
        self.device_plugin = None
        if not args.config.gpu_nodes:
            self.register_outputs({})
            return
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = standard_labels(name="nvidia", component="gpu-support")
        runtime_class = k8s.node.v1.RuntimeClass(
            f"{name}-runtime-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=RUNTIME_CLASS, labels=labels),
            handler=RUNTIME_CLASS,
            scheduling=k8s.node.v1.SchedulingArgs(
                tolerations=[
                    k8s.core.v1.TolerationArgs(
                        key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule"
                    )
                ]
            ),
            opts=child,
        )
        chart = versions.NVIDIA_DEVICE_PLUGIN
        self.device_plugin = pinned_release(
            f"{name}-device-plugin",
            chart,
            release_name="nvidia-device-plugin",
            namespace=DEVICE_PLUGIN_NAMESPACE,
            overlays=args.helm_values,
            values=device_plugin_values(args.config),
            opts=pulumi.ResourceOptions.merge(
                child,
                # The plugin's pods run with the RuntimeClass.
                pulumi.ResourceOptions(depends_on=[runtime_class]),
            ),
        )
        self.ready = [runtime_class, self.device_plugin]
        self.register_outputs({"runtime_class": RUNTIME_CLASS})

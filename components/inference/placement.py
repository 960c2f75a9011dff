"""Which model-server pods the GPU nodes of a class can hold: a pure bin-packing check.

The scheduler places a pod asking for `nvidia.com/gpu: n` on one node with `n` free
GPUs; tensor parallelism never spans nodes. Summing the GPUs of a class is therefore
not enough: three 2-GPU pods need 6 GPUs and two 3-GPU nodes have 6, yet each node
holds only one of them. `pack` answers the question
the way the scheduler would at best: first-fit decreasing over the nodes, which is
exact for the small counts of a homelab (a handful of nodes, 1-8 GPUs each) whenever
every pod asks for the same count, and a safe approximation otherwise (it may refuse
a layout a cleverer packing would accept; it never accepts one that cannot exist).

Used by the config rule "models per GPU node never exceed the node's GPUs" and by the
maintenance scaling (pods that no longer fit once a node is taken out are dropped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Pod:
    """One replica of a model server: how many GPUs it asks for, and whose it is."""

    gpus: int
    model: str
    replica: int


def pods_of(models: Mapping[str, tuple[int, int]]) -> list[Pod]:
    """Every replica of each model (`name -> (gpu_count, replicas)`), largest first.

    The order is deterministic: GPU count descending, then model name, then replica,
    so the same config always drops the same pods when capacity runs short.
    """
    pods = [
        Pod(gpus=gpus, model=name, replica=index)
        for name, (gpus, replicas) in models.items()
        for index in range(replicas)
    ]
    return sorted(pods, key=lambda p: (-p.gpus, p.model, p.replica))


def pack(
    nodes: Mapping[str, int], pods: Sequence[Pod], *, same_node: bool = False
) -> tuple[dict[Pod, str], list[Pod]]:
    """Place pods on nodes (`name -> schedulable GPUs`) first-fit decreasing.

    `same_node` keeps every replica of a model on the node of its first replica: a
    node-local ReadWriteOnce cache (k3s `local-path`) can be mounted by several pods, but
    only on the node that holds it. Returns the placement of the pods that fit and the
    list of those that do not. Nodes are tried in name order so the result does not
    depend on dict order.
    """
    free = {name: nodes[name] for name in sorted(nodes)}
    home: dict[str, str] = {}
    whole: dict[str, int] = {}
    for pod in pods:
        whole[pod.model] = whole.get(pod.model, 0) + pod.gpus
    placed: dict[Pod, str] = {}
    unplaced: list[Pod] = []
    for pod in sorted(pods, key=lambda p: (-p.gpus, p.model, p.replica)):
        if same_node and pod.model in home:
            candidates = [home[pod.model]]
        elif same_node:
            # Prefer a node that holds every replica of the model, then any with room.
            roomy = [n for n in free if free[n] >= whole[pod.model]]
            candidates = roomy + [n for n in free if n not in roomy]
        else:
            candidates = list(free)
        node = next((n for n in candidates if free[n] >= pod.gpus), None)
        if node is None:
            unplaced.append(pod)
            continue
        free[node] -= pod.gpus
        placed[pod] = node
        home.setdefault(pod.model, node)
    return placed, unplaced


def replicas_placed(
    nodes: Mapping[str, int], models: Mapping[str, tuple[int, int]], *, same_node: bool = False
) -> dict[str, int]:
    """How many replicas of each model the nodes hold (`models`: name -> (gpus, replicas))."""
    placed, _ = pack(nodes, pods_of(models), same_node=same_node)
    counts = dict.fromkeys(models, 0)
    for pod in placed:
        counts[pod.model] += 1
    return counts

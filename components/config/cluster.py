"""Config of the cluster: how it is reached or bootstrapped, its nodes, GPU classes, LAN GPU hosts."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from components.versions import K3S_VERSION, KUBERNETES_VERSION, parse_image

from ._base import DnsLabel, FrozenModel, Ipv4Address, Problem, raise_if_problems

K3sVersion = Annotated[str, StringConstraints(pattern=r"^v1\.\d{2}\.\d{1,2}\+k3s\d$")]
KubernetesMinor = Annotated[str, StringConstraints(pattern=r"^1\.\d{2}$")]
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    ),
]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
]
SshHostKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}$"
    ),
]

GPU_CLASS_LABEL = "llm-platform.io/gpu-class"
"""Node label naming a GPU node's class; model servers select on it."""
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
"""Node label choosing the NVIDIA device plugin's named config (its GPU class's sharing)."""
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT = f"{GPU_TAINT_KEY}=present:NoSchedule"
"""Taint of every GPU node: only pods tolerating it (GPU workloads) land there."""
RESERVED_LABEL_KEYS = frozenset({GPU_CLASS_LABEL, DEVICE_PLUGIN_CONFIG_LABEL})

# The kubelet may not set labels in the kubernetes.io / k8s.io namespaces except these
# (NodeRestriction); a bootstrapped node with another such label fails to register.
_KUBELET_LABEL_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")
_KUBELET_LABEL_KEYS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)


def kubelet_may_set(key: str) -> bool:
    """Whether a kubelet (`--node-label`) may set this label key on its own node."""
    if "/" not in key or key in _KUBELET_LABEL_KEYS:
        return True
    domain = key.split("/", 1)[0]
    if domain in _KUBELET_LABEL_DOMAINS or any(
        domain.endswith(f".{d}") for d in _KUBELET_LABEL_DOMAINS
    ):
        return True
    restricted = ("kubernetes.io", "k8s.io")
    return not any(domain == r or domain.endswith(f".{r}") for r in restricted)


class Arch(StrEnum):
    """CPU architecture of a node, as Kubernetes names it (`kubernetes.io/arch`)."""

    AMD64 = "amd64"
    ARM64 = "arm64"


class GpuSharing(StrEnum):
    """How one physical GPU is offered to pods."""

    NONE = "none"
    TIME_SLICING = "time-slicing"


class GpuClass(FrozenModel):
    """A kind of GPU found on nodes or LAN hosts; models are placed on a class, not a node."""

    memory_gib: float = Field(gt=0, le=200, description="Usable memory of one GPU in GiB.")
    hourly_cost_usd: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="What one GPU of this class costs per hour (power, amortisation); "
        "prices local tokens so budgets bite for local traffic too.",
    )
    sharing: GpuSharing = Field(
        default=GpuSharing.NONE,
        description="`time-slicing` offers each GPU as `time_slicing_replicas` schedulable GPUs.",
    )
    time_slicing_replicas: int = Field(
        default=2,
        ge=2,
        le=16,
        description="With `time-slicing`: schedulable GPUs each physical GPU is offered as "
        "(the NVIDIA device plugin's `replicas`); the slices share its memory unpartitioned.",
    )
    maintenance: bool = Field(
        default=False,
        description="Scales every model server on this class to zero and makes each affected "
        "model's cloud fallback its primary until switched off.",
    )


class Taint(FrozenModel):
    """A node taint."""

    key: LabelKey = Field(description="Taint key (a label key, e.g. `example.com/dedicated`).")
    value: LabelValue = Field(default="", description="Taint value; may be empty.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        default="NoSchedule", description="What the taint does to pods that do not tolerate it."
    )


class NodeGpu(FrozenModel):
    """The GPUs of a node."""

    gpu_class: DnsLabel = Field(description="A key of `cluster.gpu_classes`.")
    count: int = Field(default=1, ge=1, le=8, description="GPUs of this class in the node.")


class Node(FrozenModel):
    """A cluster node: bootstrapped over SSH in `bootstrap` mode, an inventory entry otherwise."""

    address: Ipv4Address = Field(description="LAN address the program reaches the node at.")
    role: Literal["server", "agent"] = Field(
        default="agent",
        description="`server` runs the k3s control plane (embedded etcd, so an odd count of "
        "servers); `agent` runs workloads only.",
    )
    arch: Arch = Field(
        default=Arch.AMD64,
        description="CPU architecture (`kubernetes.io/arch`); GPU nodes must be amd64.",
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Extra Kubernetes labels of the node."
    )
    taints: tuple[Taint, ...] = Field(
        default=(), description="Extra taints of the node (GPU nodes get theirs anyway)."
    )
    gpu: NodeGpu | None = Field(
        default=None, description="GPUs on the node; GPU nodes are tainted for GPU workloads only."
    )
    ssh_user: str = Field(
        default="ubuntu",
        pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
        description="SSH user in `bootstrap` mode; needs password-less sudo.",
    )
    ssh_host_key: SshHostKey | None = Field(
        default=None,
        description="The host's SSH public key (`ssh-ed25519 AAAA...`), verified in "
        "`bootstrap` mode; when unset any host key is accepted.",
    )
    maintenance: bool = Field(
        default=False, description="Same as a GPU class's maintenance switch, for this node only."
    )

    @model_validator(mode="after")
    def _gpu_nodes_are_amd64(self) -> Node:
        if self.gpu is not None and self.arch is not Arch.AMD64:
            raise_if_problems(
                [
                    Problem(
                        ("arch",), "GPU nodes must be amd64 (NVIDIA container toolkit)", self.arch
                    )
                ]
            )
        return self


class LanService(FrozenModel):
    """One server a LAN GPU host runs: vLLM serves one model on its port, Ollama several."""

    port: int = Field(ge=1, le=65535, description="Port on the host's address.")
    server: Literal["vllm", "ollama"] = Field(
        default="vllm",
        description="`vllm`: one model, the one whose lan_port is this port; `ollama`: any "
        "number of models, each named by its backend_model.",
    )
    image: str | None = Field(
        default=None,
        description="Another Ollama image, pinned (`registry/path:<exact tag>[@sha256:...]`); "
        "vLLM services take the model's `image`. The pin of `components/versions.py` when "
        "unset.",
    )


class LanGpuHost(FrozenModel):
    """A GPU workstation outside the cluster running model servers in Docker on the LAN.

    It lists the servers it runs; each model placed on it names its port (`lan_port`).
    The program renders the host's Docker Compose file from the same fit the gateway
    uses (`files/lan/<host>/compose.yaml`) and, with `managed`, installs it over SSH.
    """

    address: Ipv4Address = Field(
        description="LAN address the cluster reaches the host's servers (and SSH) at."
    )
    services: tuple[LanService, ...] = Field(
        min_length=1,
        description="The servers the host runs, each on its own port.",
    )
    gpu_class: DnsLabel = Field(description="A key of `cluster.gpu_classes`: the host's GPUs.")
    gpu_count: int = Field(
        default=1,
        ge=1,
        le=8,
        description="GPUs of the host; every model on it uses all of them (tensor parallel).",
    )
    maintenance: bool = Field(
        default=False,
        description="The host is down for work: its models' cloud fallbacks become primary.",
    )
    managed: bool = Field(
        default=False,
        description="`bootstrap` mode only: install and update the host's Compose file over "
        "SSH (Docker and the NVIDIA container toolkit must be there), restarting only the "
        "services whose definition changed. Otherwise the file is rendered for you to "
        "install.",
    )
    ssh_user: str = Field(
        default="ubuntu",
        pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
        description="SSH user when `managed`; needs password-less sudo.",
    )
    ssh_host_key: SshHostKey | None = Field(
        default=None,
        description="The host's SSH public key, verified when `managed`; any key is "
        "accepted when unset.",
    )
    install_dir: str = Field(
        default="/opt/llm-platform",
        pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$",
        description="Directory holding the Compose file (and the `.env` of secrets) on the host.",
    )
    cache_dir: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$",
        description="Host directory for the model weights (e.g. an existing Hugging Face "
        "cache); a Docker volume when unset.",
    )

    @model_validator(mode="after")
    def _ports(self) -> LanGpuHost:
        problems: list[Problem] = []
        seen: dict[int, int] = {}
        for index, service in enumerate(self.services):
            if service.port in seen:
                problems.append(
                    Problem(
                        ("services", index, "port"),
                        f"port {service.port} is already used by services.{seen[service.port]}; "
                        "one port, one server",
                        service.port,
                    )
                )
            seen.setdefault(service.port, index)
            if service.image is not None and service.server == "vllm":
                problems.append(
                    Problem(
                        ("services", index, "image"),
                        "a vLLM service runs the image of its model (`inference.models."
                        "<name>.image`)",
                        service.image,
                    )
                )
            if service.image is not None:
                try:
                    parse_image(service.image)
                except ValueError as error:
                    problems.append(
                        Problem(("services", index, "image"), f"not pinned: {error}", service.image)
                    )
        raise_if_problems(problems)
        return self

    def service(self, port: int) -> LanService | None:
        """The service on a port, if the host runs one there."""
        return next((s for s in self.services if s.port == port), None)


class ClusterConfig(FrozenModel):
    """How the program gets a cluster: installs k3s over SSH (`bootstrap`) or adopts one."""

    mode: Literal["bootstrap", "existing"] = Field(
        description="`existing` reads the kubeconfig from the secret config key `kubeconfig`; "
        "`bootstrap` installs k3s on `nodes` over SSH with the secret key `ssh_private_key`."
    )
    name: DnsLabel = Field(
        default="llm-platform",
        description="The cluster's identity to the Kubernetes provider (`clusterIdentifier`): "
        "the Kubernetes resources are replaced when it changes, never because the kubeconfig "
        "did (a rotated certificate or SSH key, a new API address). Change it only when the "
        "stack moves to another cluster.",
    )
    kubeconfig_rotated: date | None = Field(
        default=None,
        description="`bootstrap` mode: when the k3s certificates were last rotated (`k3s "
        "certificate rotate`, or renewed by k3s at a restart in their last 90 days). Changing "
        "it reads the kubeconfig from the first server again, as a new `k3s_version` or set "
        "of servers does (docs/cluster.md).",
    )
    kubernetes_version: KubernetesMinor = Field(
        default=KUBERNETES_VERSION,
        description="Kubernetes minor version of the cluster; manifests are validated against "
        "it. Defaults to the minor of the pinned k3s release.",
    )
    k3s_version: K3sVersion = Field(
        default=K3S_VERSION,
        description="k3s release installed in `bootstrap` mode; defaults to the version pinned "
        "in `components/versions.py`.",
    )
    api_endpoint: Ipv4Address | None = Field(
        default=None,
        description="Address written into the kubeconfig in `bootstrap` mode (a server or VIP).",
    )
    init_server: DnsLabel | None = Field(
        default=None,
        description="Server node that starts the embedded etcd cluster in `bootstrap` mode "
        "(`--cluster-init`); the others join it. Defaults to the first server listed; set "
        "it before reordering nodes, since it must never change once the cluster exists.",
    )
    nodes: dict[DnsLabel, Node] = Field(
        default_factory=dict,
        description="The cluster's machines by node name: installed in `bootstrap` mode, "
        "an inventory (GPUs, labels) of the existing cluster otherwise.",
    )
    gpu_classes: dict[DnsLabel, GpuClass] = Field(
        default_factory=dict,
        description="Kinds of GPU by name (e.g. `rtx-4090`); nodes, LAN hosts and models "
        "refer to them.",
    )
    lan_gpu_hosts: dict[DnsLabel, LanGpuHost] = Field(
        default_factory=dict,
        description="GPU workstations outside the cluster serving models on the LAN.",
    )
    wireguard_node: DnsLabel | None = Field(
        default=None,
        description="Node that terminates the tunnel from the edge; set up over SSH in "
        "`bootstrap` mode, rendered as a file to install by hand otherwise.",
    )
    ingress_node_address: Ipv4Address | None = Field(
        default=None,
        description="LAN address where ServiceLB exposes the ingress; the edge proxies to it "
        "through the tunnel. Defaults to the wireguard node's address.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        problems: list[Problem] = []
        if self.mode == "bootstrap":
            if self.api_endpoint is None:
                problems.append(Problem(("api_endpoint",), "required in bootstrap mode", None))
            if not any(n.role == "server" for n in self.nodes.values()):
                problems.append(
                    Problem(
                        ("nodes",),
                        "bootstrap mode needs at least one server node",
                        sorted(self.nodes),
                    )
                )
        if self.mode == "bootstrap" and not self.k3s_version.startswith(
            f"v{self.kubernetes_version}."
        ):
            problems.append(
                Problem(
                    ("k3s_version",),
                    f"must be a {self.kubernetes_version} release to match kubernetes_version",
                    self.k3s_version,
                )
            )
        problems.extend(self._bootstrap_problems())
        problems.extend(self._address_problems())
        for name, node in self.nodes.items():
            for key in sorted(set(node.labels) & RESERVED_LABEL_KEYS):
                problems.append(
                    Problem(
                        ("nodes", name, "labels", key),
                        "set by the platform from the node's `gpu`; remove it here",
                        node.labels[key],
                    )
                )
            for taint in node.taints:
                if taint.key == GPU_TAINT_KEY:
                    problems.append(
                        Problem(
                            ("nodes", name, "taints"),
                            f"the {GPU_TAINT_KEY} taint is set by the platform on GPU nodes",
                            taint.key,
                        )
                    )
            if node.gpu is not None and node.gpu.gpu_class not in self.gpu_classes:
                problems.append(
                    Problem(
                        ("nodes", name, "gpu", "gpu_class"),
                        f"unknown GPU class; defined: {sorted(self.gpu_classes) or 'none'}",
                        node.gpu.gpu_class,
                    )
                )
        for name, host in self.lan_gpu_hosts.items():
            if host.managed and self.mode != "bootstrap":
                problems.append(
                    Problem(
                        ("lan_gpu_hosts", name, "managed"),
                        "needs `bootstrap` mode (the program reaches hosts over SSH with the "
                        "secret `ssh_private_key`); in `existing` mode install "
                        f"files/lan/{name}/compose.yaml yourself",
                        True,
                    )
                )
            if host.gpu_class not in self.gpu_classes:
                problems.append(
                    Problem(
                        ("lan_gpu_hosts", name, "gpu_class"),
                        f"unknown GPU class; defined: {sorted(self.gpu_classes) or 'none'}",
                        host.gpu_class,
                    )
                )
        if self.wireguard_node is not None and self.wireguard_node not in self.nodes:
            problems.append(
                Problem(
                    ("wireguard_node",),
                    f"not a node of this cluster; nodes: {sorted(self.nodes)}",
                    self.wireguard_node,
                )
            )
        raise_if_problems(problems)
        return self

    def _bootstrap_problems(self) -> list[Problem]:
        if self.mode != "bootstrap":
            return []
        problems: list[Problem] = []
        servers = self.servers()
        if self.init_server is not None and self.init_server not in servers:
            problems.append(
                Problem(
                    ("init_server",),
                    f"must be a server node; servers: {servers or 'none'}",
                    self.init_server,
                )
            )
        if servers and len(servers) % 2 == 0:
            problems.append(
                Problem(
                    ("nodes",),
                    f"{len(servers)} servers: etcd needs a majority, so an even count "
                    "tolerates no more failures than one fewer; use 1, 3 or 5 servers",
                    servers,
                )
            )
        for name, node in self.nodes.items():
            for key in sorted(k for k in node.labels if not kubelet_may_set(k)):
                problems.append(
                    Problem(
                        ("nodes", name, "labels", key),
                        "the kubelet may not set labels in the kubernetes.io/k8s.io "
                        "namespaces (the node would not register); choose another prefix",
                        node.labels[key],
                    )
                )
        return problems

    def _address_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        seen: dict[str, str] = {}
        for name, node in self.nodes.items():
            address = str(node.address)
            if address in seen:
                problems.append(
                    Problem(
                        ("nodes", name, "address"),
                        f"same address as node {seen[address]!r}; each node is its own host",
                        address,
                    )
                )
            seen.setdefault(address, name)
        for name, host in self.lan_gpu_hosts.items():
            address = str(host.address)
            if address in seen:
                problems.append(
                    Problem(
                        ("lan_gpu_hosts", name, "address"),
                        f"is cluster node {seen[address]!r}; a LAN GPU host stays outside the "
                        "cluster (give the node a `gpu` instead)",
                        address,
                    )
                )
        return problems

    def servers(self) -> list[str]:
        """Server node names, in config order."""
        return [name for name, node in self.nodes.items() if node.role == "server"]

    def first_server(self) -> str:
        """The server that starts the cluster: `init_server`, else the first server listed."""
        if self.init_server is not None:
            return self.init_server
        servers = self.servers()
        if not servers:
            raise ValueError("the cluster has no server node")
        return servers[0]

    def node_labels(self, name: str) -> dict[str, str]:
        """A node's labels as applied: config labels plus the GPU labels of GPU nodes."""
        node = self.nodes[name]
        labels = dict(node.labels)
        if node.gpu is not None:
            labels[GPU_CLASS_LABEL] = node.gpu.gpu_class
            labels[DEVICE_PLUGIN_CONFIG_LABEL] = node.gpu.gpu_class
        return labels

    def node_taints(self, name: str) -> list[str]:
        """A node's taints as applied (`key=value:Effect`).

        GPU nodes get the GPU taint, unless no untainted node without GPUs exists (a
        single-node dev cluster): tainting its only node would leave nothing else a place.
        """
        node = self.nodes[name]
        taints = [
            f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
            for t in node.taints
        ]
        if node.gpu is not None and self.schedulable_general_nodes() > 0:
            taints.append(GPU_TAINT)
        return sorted(taints)

    @property
    def gpu_nodes(self) -> dict[str, Node]:
        """Nodes that carry GPUs, by name."""
        return {name: node for name, node in self.nodes.items() if node.gpu is not None}

    def schedulable_general_nodes(self) -> int:
        """Nodes without a NoSchedule/NoExecute taint, where control planes can run."""
        hard = {"NoSchedule", "NoExecute"}
        return sum(
            1
            for node in self.nodes.values()
            if node.gpu is None and not any(t.effect in hard for t in node.taints)
        )

    def gpu_capacity(self, gpu_class: str) -> int:
        """Schedulable GPUs of a class across nodes, counting time-slicing replicas."""
        spec = self.gpu_classes[gpu_class]
        per_gpu = spec.time_slicing_replicas if spec.sharing is GpuSharing.TIME_SLICING else 1
        return sum(
            node.gpu.count * per_gpu
            for node in self.nodes.values()
            if node.gpu is not None and node.gpu.gpu_class == gpu_class
        )

    def class_in_maintenance(self, gpu_class: str) -> bool:
        """True when the class or every node carrying it is switched to maintenance."""
        if self.gpu_classes[gpu_class].maintenance:
            return True
        carriers = [
            n for n in self.nodes.values() if n.gpu is not None and n.gpu.gpu_class == gpu_class
        ]
        return bool(carriers) and all(n.maintenance for n in carriers)

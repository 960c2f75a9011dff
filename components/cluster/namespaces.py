"""The platform's namespaces and the traffic allowed between them, as plain data.

Pure functions of config: which namespaces exist (areas switched off get none), their
Pod Security Standards level, whether Linkerd injects them, and the `Flow`s the
platform needs. `ClusterBase` turns these into Namespaces and NetworkPolicies; tests
check the data without the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from components.config import PlatformConfig

WORLD = "world"
"""Any address: clients through ServiceLB, the API server (host network), the internet."""

KUBE_API_PORTS = (443, 6443)
LINKERD_PROXY_INBOUND = 4143
LINKERD_CONTROL_PORTS = (8080, 8086, 8090)
LLM_GATEWAY_PORT = 4000
VLLM_PORT = 8000
GRAFANA_PORT = 3000
POSTGRES_PORT = 5432
TRAEFIK_PORTS = (8000, 8443)
TRAEFIK_METRICS_PORT = 9100
"""The Traefik chart's `metrics` entry point (`ports.metrics.port`), bundled or pinned."""
EMBEDDINGS_PORT = 8080
QDRANT_HTTP_PORT = 6333
QDRANT_GRPC_PORT = 6334
PROMETHEUS_PORT = 9090
KEDA_METRICS_API_PORT = 6443
"""keda chart `service.portHttpsTarget`: the metrics API server's container port."""
KEDA_WEBHOOK_PORT = 9443
"""keda chart: the admission webhooks' container port (`webhooks.port` empty: 9443)."""
CERT_MANAGER_WEBHOOK_PORT = 10250
TRUST_MANAGER_WEBHOOK_PORT = 6443
"""trust-manager chart `app.webhook.port`: its Service's targetPort behind port 443."""
KUBELET_PORT = 10250
NODE_EXPORTER_PORT = 9100
COREDNS_METRICS_PORT = 9153
KUBE_SYSTEM = "kube-system"
SSH_PORT = 22
ARC_SYSTEM_NAMESPACE = "arc-systems"
"""The runner controller and the listener pod of each scale set it starts."""
ARC_RUNNERS_NAMESPACE = "arc-runners"
"""The runner pods, one per job."""


class PodSecurity(StrEnum):
    """Pod Security Standards levels."""

    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class NamespaceSpec:
    """One namespace: its area, PSS enforce level, quota key and mesh injection."""

    name: str
    area: str
    enforce: PodSecurity
    meshed: bool
    quota_key: str | None = None
    """Field of `NamespacesConfig` sizing its quota; infra namespaces have none."""
    why_not_restricted: str = ""


@dataclass(frozen=True)
class Flow:
    """Traffic the platform needs: from a namespace (or WORLD) to a namespace (or a CIDR)."""

    source: str
    target: str
    ports: tuple[int, ...]
    why: str


def platform_namespaces(config: PlatformConfig) -> tuple[NamespaceSpec, ...]:
    """The namespaces a stack creates, in a stable order."""
    mesh = config.mesh.enabled
    specs = [NamespaceSpec("cert-manager", "pki", PodSecurity.RESTRICTED, meshed=False)]
    if config.ingress_mode == "platform":
        specs.append(
            NamespaceSpec(
                "traefik",
                "ingress",
                PodSecurity.BASELINE,
                meshed=mesh,
                why_not_restricted="the chart leaves seccompProfile to the namespace default",
            )
        )
    if mesh:
        specs += [
            NamespaceSpec(
                "linkerd",
                "mesh",
                PodSecurity.BASELINE,
                meshed=False,
                why_not_restricted="control-plane pods run the network validator init step",
            ),
            NamespaceSpec(
                "linkerd-cni",
                "mesh",
                PodSecurity.PRIVILEGED,
                meshed=False,
                why_not_restricted="the CNI DaemonSet writes the node's CNI config (hostPath)",
            ),
        ]
        if config.mesh.viz:
            specs.append(NamespaceSpec("linkerd-viz", "mesh", PodSecurity.RESTRICTED, meshed=True))
    specs.append(NamespaceSpec("cnpg-system", "llm_gateway", PodSecurity.RESTRICTED, meshed=False))
    specs += [
        NamespaceSpec(
            "inference",
            "inference",
            PodSecurity.RESTRICTED,
            meshed=mesh,
            quota_key="inference",
        ),
        NamespaceSpec(
            "llm-gateway",
            "llm_gateway",
            PodSecurity.RESTRICTED,
            meshed=mesh,
            quota_key="llm_gateway",
        ),
    ]
    if config.observability.enabled:
        specs.append(
            NamespaceSpec(
                "observability",
                "observability",
                PodSecurity.PRIVILEGED,
                meshed=False,
                quota_key="observability",
                why_not_restricted="node-exporter and the DCGM exporter read the host",
            )
        )
    if config.data.enabled:
        specs.append(
            NamespaceSpec("data", "data", PodSecurity.RESTRICTED, meshed=mesh, quota_key="data")
        )
    if config.autoscaled_models:
        specs.append(NamespaceSpec("keda", "autoscaling", PodSecurity.RESTRICTED, meshed=False))
    if config.vpa.enabled:
        specs.append(NamespaceSpec("vpa", "autoscaling", PodSecurity.RESTRICTED, meshed=False))
    if config.runners.enabled:
        # Unmeshed: a runner pod ends with its job, and a job reaches the cluster only
        # through the API server and the ingress, like a deploy from outside would.
        specs += [
            NamespaceSpec(ARC_SYSTEM_NAMESPACE, "runners", PodSecurity.RESTRICTED, meshed=False),
            NamespaceSpec(
                ARC_RUNNERS_NAMESPACE,
                "runners",
                PodSecurity.RESTRICTED,
                meshed=False,
                quota_key="runners",
            ),
        ]
    return tuple(specs)


def platform_flows(config: PlatformConfig) -> tuple[Flow, ...]:
    """Every flow between namespaces the platform needs; anything else is denied."""
    names = {spec.name for spec in platform_namespaces(config)}
    # k3s's own Traefik (`ingress.mode: bundled`) lives in kube-system, whose traffic the
    # platform leaves alone: only what it sends into the platform's namespaces is allowed.
    ingress = config.ingress_namespace
    flows = []
    if ingress in names:
        flows += [
            Flow(WORLD, ingress, TRAEFIK_PORTS, "clients arrive through ServiceLB"),
            Flow(ingress, WORLD, KUBE_API_PORTS, "Traefik watches routes in the API"),
        ]
    flows += [
        Flow(ingress, "llm-gateway", (LLM_GATEWAY_PORT,), "the ingress routes to LiteLLM"),
        Flow("llm-gateway", "inference", (VLLM_PORT,), "LiteLLM calls the model servers"),
        Flow("llm-gateway", WORLD, (443,), "cloud fallback providers over HTTPS"),
        Flow("inference", WORLD, (443,), "model weights download from Hugging Face"),
        Flow(
            WORLD,
            "cert-manager",
            (CERT_MANAGER_WEBHOOK_PORT, TRUST_MANAGER_WEBHOOK_PORT),
            "the API server calls the cert-manager and trust-manager webhooks",
        ),
        Flow("cert-manager", WORLD, KUBE_API_PORTS, "cert-manager watches the API"),
        Flow(WORLD, "cnpg-system", (9443,), "the API server calls the CloudNativePG webhook"),
        Flow("cnpg-system", WORLD, KUBE_API_PORTS, "the CloudNativePG operator watches the API"),
        Flow("cnpg-system", "llm-gateway", (5432, 8000), "the operator manages Postgres"),
    ]
    for name, host in sorted(config.cluster.lan_gpu_hosts.items()):
        flows.append(
            Flow(
                "llm-gateway",
                f"{host.address}/32",
                tuple(s.port for s in host.services),
                f"LAN GPU host {name}",
            )
        )
    for name, server in sorted(config.llm_gateway.mcp_servers.items()):
        service = server.service
        if service is not None and service.namespace != "llm-gateway":
            flows.append(
                Flow("llm-gateway", service.namespace, (service.port,), f"MCP server {name}")
            )
        # 443 is already open to the cloud providers; another port gets its own flow.
        if server.remote_port not in (None, 443):
            flows.append(Flow("llm-gateway", WORLD, (server.remote_port,), f"MCP server {name}"))
    if "linkerd" in names:
        flows += [
            Flow(WORLD, "linkerd", (8443, 9443), "the API server calls Linkerd's webhooks"),
            Flow("linkerd", WORLD, KUBE_API_PORTS, "the control plane watches the API"),
        ]
        meshed = [spec.name for spec in platform_namespaces(config) if spec.meshed]
        flows += [
            Flow(ns, "linkerd", LINKERD_CONTROL_PORTS, "proxies fetch identity and routes")
            for ns in meshed
        ]
    if "observability" in names:
        flows.append(Flow(ingress, "observability", (GRAFANA_PORT,), "Grafana is published"))
        if ingress == KUBE_SYSTEM:
            flows.append(
                Flow(
                    "observability",
                    KUBE_SYSTEM,
                    (TRAEFIK_METRICS_PORT,),
                    "Prometheus scrapes Traefik",
                )
            )
        flows.append(Flow("observability", WORLD, KUBE_API_PORTS, "operator and discovery"))
        flows.append(
            Flow(WORLD, "observability", (10250,), "the API server calls the operator webhook")
        )
        # The runner namespaces serve no metrics (the controller runs with them off).
        unscraped = {"observability", ARC_SYSTEM_NAMESPACE, ARC_RUNNERS_NAMESPACE}
        flows += [
            Flow("observability", ns, (), "Prometheus scrapes metrics")
            for ns in sorted(names - unscraped)
        ]
        flows.append(
            Flow(
                "observability", KUBE_SYSTEM, (COREDNS_METRICS_PORT,), "Prometheus scrapes CoreDNS"
            )
        )
        # The kubelet and node-exporter (host network) answer on the nodes' own addresses;
        # an adopted cluster whose nodes the config does not list gets them anywhere.
        node_targets = [f"{node.address}/32" for _, node in sorted(config.cluster.nodes.items())]
        flows += [
            Flow(
                "observability",
                target,
                (KUBELET_PORT, NODE_EXPORTER_PORT),
                "Prometheus scrapes the kubelet and node-exporter",
            )
            for target in node_targets or [WORLD]
        ]
        flows += [
            Flow(
                "observability",
                f"{host.address}/32",
                tuple(s.port for s in host.services if s.server == "vllm"),
                f"Prometheus scrapes {name}",
            )
            for name, host in sorted(config.cluster.lan_gpu_hosts.items())
            if any(s.server == "vllm" for s in host.services)
        ]
    if "data" in names:
        flows += [
            Flow(
                "llm-gateway",
                "data",
                (EMBEDDINGS_PORT, QDRANT_HTTP_PORT, QDRANT_GRPC_PORT),
                "LiteLLM calls the embeddings server; gateway-side RAG clients call Qdrant",
            ),
            Flow("data", WORLD, (443,), "embedding weights download from Hugging Face"),
        ]
    if "keda" in names:
        flows += [
            Flow(
                WORLD,
                "keda",
                (KEDA_METRICS_API_PORT, KEDA_WEBHOOK_PORT),
                "the API server calls KEDA's external metrics API and admission webhook",
            ),
            Flow("keda", WORLD, KUBE_API_PORTS, "KEDA watches ScaledObjects and scales workloads"),
            Flow("keda", "observability", (PROMETHEUS_PORT,), "KEDA queries the scaling metrics"),
        ]
    if "vpa" in names:
        flows.append(
            Flow("vpa", WORLD, KUBE_API_PORTS, "the VPA recommender reads usage, writes advice")
        )
    if ARC_RUNNERS_NAMESPACE in names:
        flows += _runner_flows(config)
    return tuple(_with_mesh_inbound(flows, platform_namespaces(config)))


def _runner_flows(config: PlatformConfig) -> list[Flow]:
    """What the runner controller, its listeners and the jobs reach, and nothing else."""
    flows = [
        Flow(
            ARC_SYSTEM_NAMESPACE,
            WORLD,
            KUBE_API_PORTS,
            "the controller and listeners: the Kubernetes API and GitHub's API (443)",
        ),
        Flow(
            ARC_RUNNERS_NAMESPACE,
            WORLD,
            KUBE_API_PORTS,
            "jobs: GitHub, the package indexes, AWS and Pulumi over HTTPS; the Kubernetes API "
            "for `pulumi up`",
        ),
        Flow(
            ARC_RUNNERS_NAMESPACE,
            "traefik",
            TRAEFIK_PORTS,
            "jobs reach the gateway's admin API (virtual keys) at https://api.<domain>",
        ),
    ]
    if config.cluster.mode == "bootstrap":
        hosts = [node.address for _, node in sorted(config.cluster.nodes.items())]
        hosts += [h.address for _, h in sorted(config.cluster.lan_gpu_hosts.items()) if h.managed]
        flows += [
            Flow(
                ARC_RUNNERS_NAMESPACE,
                f"{address}/32",
                (SSH_PORT,),
                "`pulumi up` installs k3s and the managed LAN hosts over SSH",
            )
            for address in sorted(set(map(str, hosts)))
        ]
    return flows


def _with_mesh_inbound(flows: Iterable[Flow], specs: Iterable[NamespaceSpec]) -> list[Flow]:
    """Between meshed namespaces the server-side proxy listens on 4143 as well."""
    meshed = {spec.name for spec in specs if spec.meshed}
    result = []
    for flow in flows:
        if flow.source in meshed and flow.target in meshed and flow.ports:
            flow = Flow(
                flow.source,
                flow.target,
                (*flow.ports, LINKERD_PROXY_INBOUND),
                flow.why,
            )
        result.append(flow)
    return result

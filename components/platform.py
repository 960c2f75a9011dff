"""Platform: wires the areas together in dependency order, and nothing else.

Each area gets a typed args object built from its config sub-model and the handles
(Outputs, providers) of the areas before it; areas never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.autoscaling.controllers import Autoscalers, AutoscalersArgs
from components.autoscaling.recommendations import (
    ResourceRecommendations,
    ResourceRecommendationsArgs,
)
from components.clients import ClientKeys, ClientKeysArgs
from components.cloud.foundation import AwsFoundation, AwsFoundationArgs
from components.cloud.issuer import ServiceAccountIssuer, ServiceAccountIssuerArgs
from components.cluster.base import ClusterBase, ClusterBaseArgs
from components.cluster.gpu import GpuSupport, GpuSupportArgs
from components.cluster.k3s import K3sCluster, K3sClusterArgs
from components.cluster.lan_hosts import LanGpuHosts, LanGpuHostsArgs
from components.cluster.lan_workstations import LanWorkstations, LanWorkstationsArgs
from components.config import PlatformConfig, StackSecrets
from components.config.mcp import header_env
from components.data.layer import DataLayer, DataLayerArgs
from components.edge.gateway import EdgeGateway, EdgeGatewayArgs
from components.inference.endpoints import INFERENCE_NAMESPACE
from components.inference.model_server import Inference, InferenceArgs
from components.ingress.traefik import TraefikIngress, TraefikIngressArgs
from components.llm_gateway.gateway import LlmGateway, LlmGatewayArgs
from components.mesh.linkerd import ServiceMesh, ServiceMeshArgs
from components.observability.stack import NAMESPACE as OBSERVABILITY_NAMESPACE
from components.observability.stack import Observability, ObservabilityArgs
from components.observability.values import prometheus_url
from components.pki.internal_pki import InternalPki, InternalPkiArgs
from components.runners.scale_sets import RunnerScaleSets, RunnerScaleSetsArgs


@dataclass(frozen=True, kw_only=True)
class PlatformArgs:
    """The validated stack config and its secrets."""

    config: PlatformConfig
    secrets: StackSecrets


class Platform(pulumi.ComponentResource):
    """The whole LLM platform of one stack."""

    cluster: K3sCluster
    base: ClusterBase
    pki: InternalPki
    ingress: TraefikIngress
    mesh: ServiceMesh
    autoscalers: Autoscalers
    inference: Inference
    lan_hosts: LanGpuHosts
    workstations: LanWorkstations
    gpu: GpuSupport
    llm_gateway: LlmGateway
    client_keys: ClientKeys
    data: DataLayer
    observability: Observability
    recommendations: ResourceRecommendations
    edge: EdgeGateway | None
    runners: RunnerScaleSets | None
    foundation: AwsFoundation | None
    """The shared AWS pieces; None when nothing of the stack is on AWS."""
    issuer: ServiceAccountIssuer | None
    given_keys: dict[str, pulumi.Output[str]]
    """Client keys given as secret config (`edge.client_key_secrets`), by client."""
    aws_provider: aws.Provider | None
    """None when nothing of the stack is on AWS: such a stack needs no AWS credentials."""
    config: PlatformConfig
    artifacts: dict[str, pulumi.Output[str]]
    """Generated files exactly as deployed (path under `files/` → text), for the render."""

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:index:Platform", name, None, opts)
        config = args.config
        self.config = config
        child = pulumi.ResourceOptions(parent=self)
        self.artifacts = {}
        self.aws_provider = None
        self.foundation = None
        if config.uses_aws:
            self.aws_provider = aws.Provider(
                f"{name}-aws",
                region=config.aws.region,
                default_tags={
                    "tags": {
                        "project": "llm-platform",
                        "environment": config.environment,
                        "managed-by": "pulumi",
                        **config.aws.tags,
                    }
                },
                opts=child,
            )
            self.foundation = AwsFoundation(
                f"{name}-aws-base",
                AwsFoundationArgs(config=config, provider=self.aws_provider),
                opts=child,
            )
        foundation = self.foundation
        log_target = foundation.log_target if foundation is not None else None

        self.cluster = K3sCluster(
            f"{name}-cluster",
            K3sClusterArgs(
                config=config.cluster,
                kubeconfig=args.secrets.kubeconfig,
                ssh_private_key=args.secrets.ssh_private_key,
                protect=config.is_prod,
                service_account_issuer=foundation.issuer_url if foundation is not None else None,
                service_account_jwks=config.aws.backup_credentials.service_account_jwks,
            ),
            opts=child,
        )
        self.issuer = None
        if self.cluster.service_account_jwks is not None:
            assert foundation is not None and self.aws_provider is not None  # an issuer is on AWS
            self.issuer = ServiceAccountIssuer(
                f"{name}-issuer",
                ServiceAccountIssuerArgs(
                    config=config,
                    provider=self.aws_provider,
                    account_id=foundation.account_id,
                    jwks=self.cluster.service_account_jwks,
                    log_target=log_target,
                ),
                opts=child,
            )
        identity = self.issuer.identity if self.issuer is not None else None
        self.artifacts.update(self.cluster.artifacts)
        self.base = ClusterBase(
            f"{name}-base",
            ClusterBaseArgs(config=config, provider=self.cluster.provider),
            opts=child,
        )
        provider = self.cluster.provider
        namespaces = self.base.namespaces
        self.pki = InternalPki(
            f"{name}-pki",
            InternalPkiArgs(config=config, provider=provider, namespace=namespaces["cert-manager"]),
            opts=child,
        )
        self.mesh = ServiceMesh(
            f"{name}-mesh",
            ServiceMeshArgs(
                config=config,
                provider=provider,
                cert_manager_ready=self.pki.ready,
                namespace=namespaces.get("linkerd", "linkerd"),
                cni_namespace=namespaces.get("linkerd-cni", "linkerd-cni"),
                namespaces=namespaces,
                viz_namespace=namespaces.get("linkerd-viz", "linkerd-viz"),
            ),
            opts=child,
        )
        self.ingress = TraefikIngress(
            f"{name}-ingress",
            TraefikIngressArgs(
                config=config,
                provider=provider,
                issuer_name=self.pki.issuer_name,
                pki_ready=self.pki.ready,
                namespace=namespaces.get(config.ingress_namespace, config.ingress_namespace),
            ),
            opts=child,
        )
        self.gpu = GpuSupport(
            f"{name}-gpu",
            GpuSupportArgs(
                config=config.cluster, provider=provider, helm_values=config.helm_values
            ),
            opts=child,
        )
        self.lan_hosts = LanGpuHosts(
            f"{name}-lan-hosts",
            LanGpuHostsArgs(config=config, provider=provider, namespace=namespaces["inference"]),
            opts=child,
        )
        self.workstations = LanWorkstations(
            f"{name}-workstations",
            LanWorkstationsArgs(
                config=config,
                ssh_private_key=args.secrets.ssh_private_key,
                huggingface_token=args.secrets.huggingface_token,
                protect=config.is_prod,
            ),
            opts=child,
        )
        self.artifacts.update(self.workstations.artifacts)
        self.autoscalers = Autoscalers(
            f"{name}-autoscalers",
            AutoscalersArgs(
                config=config,
                provider=provider,
                scaled_namespace=INFERENCE_NAMESPACE,
                keda_namespace=namespaces.get("keda", "keda"),
                vpa_namespace=namespaces.get("vpa", "vpa"),
            ),
            opts=child,
        )
        self.inference = Inference(
            f"{name}-inference",
            InferenceArgs(
                config=config,
                provider=provider,
                namespace=namespaces["inference"],
                huggingface_token=args.secrets.huggingface_token,
                gpu_ready=self.gpu.ready,
                keda_ready=self.autoscalers.keda_ready,
                prometheus_url=prometheus_url(OBSERVABILITY_NAMESPACE),
            ),
            opts=child,
        )
        self.client_keys = ClientKeys(
            f"{name}-clients", ClientKeysArgs(clients=config.clients), opts=child
        )
        cloud_keys = {
            cloud.api_key_env: args.secrets.require(cloud.api_key_secret)
            for cloud in config.llm_gateway.cloud_models.values()
        }
        self.llm_gateway = LlmGateway(
            f"{name}-gateway",
            LlmGatewayArgs(
                config=config,
                provider=provider,
                ingress=self.ingress.handle,
                namespace=namespaces["llm-gateway"],
                operator_namespace=namespaces["cnpg-system"],
                cloud_api_keys=cloud_keys,
                mcp_header_secrets={
                    header_env(server_name, header): args.secrets.require(key)
                    for server_name, server in config.llm_gateway.mcp_servers.items()
                    for header, key in server.secret_headers.items()
                },
                aws_provider=self.aws_provider,
                log_target=log_target,
                workload_identity=identity,
                client_keys=self.client_keys.gateway_keys,
                cert_manager_ready=self.pki.ready,
                admin_ca_pem=self.pki.root_ca_pem,
                mesh_ready=self.mesh.ready,
            ),
            opts=child,
        )
        self.artifacts.update(self.llm_gateway.artifacts)
        self.data = DataLayer(
            f"{name}-data",
            DataLayerArgs(
                config=config,
                provider=provider,
                namespace=namespaces.get("data", "data"),
                aws_provider=self.aws_provider,
                log_target=log_target,
                workload_identity=identity,
                gpu_ready=self.gpu.ready,
                mesh_policy_ready=self.mesh.policy_ready,
            ),
            opts=child,
        )
        self.observability = Observability(
            f"{name}-observability",
            ObservabilityArgs(
                config=config,
                provider=provider,
                ingress=self.ingress.handle,
                namespace=namespaces.get("observability", "observability"),
                gpu_ready=self.gpu.ready,
                vpa_ready=self.autoscalers.vpa_ready,
            ),
            opts=child,
        )
        self.recommendations = ResourceRecommendations(
            f"{name}-recommendations",
            ResourceRecommendationsArgs(
                config=config,
                provider=provider,
                workloads=[
                    *self.llm_gateway.workloads,
                    *self.inference.workloads,
                    *self.data.workloads,
                ],
                namespaces=namespaces,
                vpa_ready=self.autoscalers.vpa_ready,
            ),
            opts=child,
        )
        self.runners = None
        app = config.runners.github_app
        if config.runners.enabled and app is not None:
            self.runners = RunnerScaleSets(
                f"{name}-runners",
                RunnerScaleSetsArgs(
                    config=config,
                    provider=provider,
                    github_app_private_key=args.secrets.require(app.private_key_secret),
                    system_namespace=namespaces["arc-systems"],
                    runners_namespace=namespaces["arc-runners"],
                    gpu_ready=self.gpu.ready,
                ),
                opts=child,
            )
        self.edge = None
        self.given_keys = {
            client: args.secrets.require(key)
            for client, key in (config.edge.client_key_secrets.items() if config.edge else ())
        }
        if config.edge_enabled:
            assert self.aws_provider is not None  # the edge is on AWS
            home_connection, home_ready = None, []
            tunnel_node = config.cluster.wireguard_node
            if config.cluster.mode == "bootstrap" and tunnel_node is not None:
                home_connection = self.cluster.connection(tunnel_node)
                home_ready = [self.cluster.installs[tunnel_node]]
            self.edge = EdgeGateway(
                f"{name}-edge",
                EdgeGatewayArgs(
                    config=config,
                    provider=self.aws_provider,
                    edge_keys=self.client_keys.edge_keys,
                    upstream_keys=self.client_keys.gateway_keys,
                    upstream_ca_pem=self.pki.root_ca_pem,
                    home_connection=home_connection,
                    home_node_ready=home_ready,
                    given_keys=self.given_keys,
                    log_target=log_target,
                ),
                opts=child,
            )
            self.artifacts.update(self.edge.artifacts)

        self.register_outputs({"namespaces": self.base.namespaces})

    def stack_outputs(self) -> dict[str, pulumi.Input[Any]]:
        """Values of the stack outputs contract (`components.outputs.PlatformOutputs`)."""
        config = self.config
        edge = self.edge
        client_keys = (
            {**self.client_keys.edge_keys, **self.given_keys}
            if config.edge_enabled
            else self.client_keys.gateway_keys
        )
        return {
            "environment": config.environment,
            "api_base_url": edge.endpoint_url if edge else self.llm_gateway.public_url,
            "internal_api_base_url": self.llm_gateway.internal_url,
            "models": self.llm_gateway.models,
            "namespaces": self.base.namespaces,
            "root_ca_pem": self.pki.root_ca_pem,
            "root_ca_expiry": self.pki.root_ca_expiry,
            "mesh_trust_anchor_expiry": self.mesh.trust_anchor_expiry,
            "grafana_url": self.observability.grafana_url,
            "edge_public_ip": edge.public_ip if edge else None,
            "edge_wireguard_public_key": edge.wireguard_public_key if edge else None,
            "edge_ssm_parameters": edge.ssm_parameters if edge else None,
            "edge_home_wireguard_conf": edge.home_wireguard_conf if edge else None,
            "embeddings_model": self.data.embeddings_model,
            "vector_db_url": self.data.vector_db_url,
            "vector_db_api_key_secret": self.data.api_key_secret_ref,
            "kubeconfig": self.cluster.kubeconfig,
            "master_key": self.llm_gateway.master_key,
            "client_keys": pulumi.Output.all(**client_keys) if client_keys else {},
        }

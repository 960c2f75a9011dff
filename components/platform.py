"""Platform: wires the areas together in dependency order, and nothing else.

Each area gets a typed args object built from its config sub-model and the handles
(Outputs, providers) of the areas before it; areas never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.cluster.base import ClusterBase, ClusterBaseArgs
from components.cluster.k3s import K3sCluster, K3sClusterArgs
from components.config import PlatformConfig, StackSecrets
from components.inference.model_server import Inference, InferenceArgs
from components.ingress.traefik import TraefikIngress, TraefikIngressArgs
from components.pki.internal_pki import InternalPki, InternalPkiArgs


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
    inference: Inference
    artifacts: dict[str, pulumi.Output[str]]
    """Generated files exactly as deployed (path under `files/` → text), for the render."""

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:index:Platform", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.artifacts = {}

        self.cluster = K3sCluster(
            f"{name}-cluster",
            K3sClusterArgs(config=config.cluster, kubeconfig=args.secrets.kubeconfig),
            opts=child,
        )
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
        self.ingress = TraefikIngress(
            f"{name}-ingress",
            TraefikIngressArgs(
                config=config,
                provider=provider,
                issuer_name=self.pki.issuer_name,
                pki_ready=self.pki.ready,
                namespace=namespaces["traefik"],
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
            ),
            opts=child,
        )

        self.register_outputs({"namespaces": self.base.namespaces})

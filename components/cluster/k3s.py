"""K3sCluster: the cluster every in-cluster area deploys to, and the provider that reaches it.

In `existing` mode it adopts a running cluster from the kubeconfig held as the stack
secret `kubeconfig`. Either way it exposes the same handle: `kubeconfig` (a secret
Output) and `provider`, the explicit `k8s.Provider` every Kubernetes resource uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import ClusterConfig


@dataclass(frozen=True, kw_only=True)
class K3sClusterArgs:
    """Inputs of the cluster component."""

    config: ClusterConfig
    kubeconfig: pulumi.Output[str] | None = None
    """Secret kubeconfig of an existing cluster (required in `existing` mode)."""


class K3sCluster(pulumi.ComponentResource):
    """A k3s cluster reached through an explicit Kubernetes provider."""

    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(
        self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:cluster:K3sCluster", name, None, opts)
        if args.config.mode != "existing" or args.kubeconfig is None:
            raise ValueError("K3sCluster: bootstrap mode is built by the cluster bootstrap area")
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})

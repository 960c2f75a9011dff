"""Config of the cluster base: per-namespace quotas and container defaults."""

from __future__ import annotations

from pydantic import Field

from ._base import FrozenModel, K8sQuantity


class QuotaConfig(FrozenModel):
    """A namespace's ResourceQuota: what all its pods together may request and use."""

    requests_cpu: K8sQuantity = "4"
    requests_memory: K8sQuantity = "8Gi"
    limits_cpu: K8sQuantity = "8"
    limits_memory: K8sQuantity = "16Gi"
    pods: int = Field(default=50, ge=1, le=10_000)
    gpus: int = Field(default=0, ge=0, le=256, description="`requests.nvidia.com/gpu` allowed.")
    persistent_volume_claims: int = Field(default=10, ge=0, le=1000)
    requests_storage: K8sQuantity = "100Gi"


class ContainerDefaultsConfig(FrozenModel):
    """A namespace's LimitRange: requests and limits given to containers that set none."""

    default_request_cpu: K8sQuantity = "100m"
    default_request_memory: K8sQuantity = "128Mi"
    default_limit_cpu: K8sQuantity = "1"
    default_limit_memory: K8sQuantity = "512Mi"
    max_memory: K8sQuantity = Field(
        default="64Gi", description="No single container may ask for more memory than this."
    )


class NamespaceConfig(FrozenModel):
    """Quota and container defaults of one workload namespace."""

    quota: QuotaConfig = Field(default_factory=QuotaConfig)
    container_defaults: ContainerDefaultsConfig = Field(default_factory=ContainerDefaultsConfig)


class NamespacesConfig(FrozenModel):
    """Sizing of the workload namespaces the platform creates; infra namespaces get no quota."""

    llm_gateway: NamespaceConfig = Field(default_factory=NamespaceConfig)
    inference: NamespaceConfig = Field(
        default_factory=lambda: NamespaceConfig(
            quota=QuotaConfig(
                requests_cpu="16",
                requests_memory="64Gi",
                limits_cpu="32",
                limits_memory="128Gi",
                gpus=8,
                requests_storage="500Gi",
            ),
            container_defaults=ContainerDefaultsConfig(max_memory="128Gi"),
        )
    )
    observability: NamespaceConfig = Field(default_factory=NamespaceConfig)
    data: NamespaceConfig = Field(default_factory=NamespaceConfig)
    runners: NamespaceConfig = Field(
        default_factory=lambda: NamespaceConfig(quota=QuotaConfig(gpus=1)),
        description="The runner pods' namespace (`arc-runners`): every scale set at its "
        "`max_runners` must fit.",
    )

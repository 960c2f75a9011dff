"""Config of the cluster base: per-namespace quotas and container defaults."""

from __future__ import annotations

from pydantic import Field

from ._base import FrozenModel, K8sQuantity


class QuotaConfig(FrozenModel):
    """A namespace's ResourceQuota: what all its pods together may request and use."""

    requests_cpu: K8sQuantity = Field(
        default="4", description="`requests.cpu`: CPU all the namespace's pods may request."
    )
    requests_memory: K8sQuantity = Field(
        default="8Gi", description="`requests.memory`: memory all its pods may request."
    )
    limits_cpu: K8sQuantity = Field(
        default="8", description="`limits.cpu`: the sum of its containers' CPU limits."
    )
    limits_memory: K8sQuantity = Field(
        default="16Gi", description="`limits.memory`: the sum of its containers' memory limits."
    )
    pods: int = Field(
        default=50, ge=1, le=10_000, description="Pods (not finished) the namespace may hold."
    )
    gpus: int = Field(default=0, ge=0, le=256, description="`requests.nvidia.com/gpu` allowed.")
    persistent_volume_claims: int = Field(
        default=10, ge=0, le=1000, description="PersistentVolumeClaims the namespace may hold."
    )
    requests_storage: K8sQuantity = Field(
        default="100Gi", description="`requests.storage`: the sum of its claims' sizes."
    )


class ContainerDefaultsConfig(FrozenModel):
    """A namespace's LimitRange: requests and limits given to containers that set none."""

    default_request_cpu: K8sQuantity = Field(
        default="100m", description="CPU request of a container that sets none."
    )
    default_request_memory: K8sQuantity = Field(
        default="128Mi", description="Memory request of a container that sets none."
    )
    default_limit_cpu: K8sQuantity = Field(
        default="1", description="CPU limit of a container that sets none."
    )
    default_limit_memory: K8sQuantity = Field(
        default="512Mi", description="Memory limit of a container that sets none."
    )
    max_memory: K8sQuantity = Field(
        default="64Gi", description="No single container may ask for more memory than this."
    )


class NamespaceConfig(FrozenModel):
    """Quota and container defaults of one workload namespace."""

    quota: QuotaConfig = Field(
        default_factory=QuotaConfig, description="The namespace's ResourceQuota."
    )
    container_defaults: ContainerDefaultsConfig = Field(
        default_factory=ContainerDefaultsConfig, description="The namespace's LimitRange."
    )


class NamespacesConfig(FrozenModel):
    """Sizing of the workload namespaces the platform creates; infra namespaces get no quota."""

    llm_gateway: NamespaceConfig = Field(
        default_factory=NamespaceConfig,
        description="`llm-gateway`: LiteLLM, its Postgres and Redis (sized for HPA maximum).",
    )
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
        ),
        description="`inference`: the vLLM model servers (GPUs, weight caches).",
    )
    observability: NamespaceConfig = Field(
        default_factory=NamespaceConfig,
        description="`observability`: Prometheus, Alertmanager, Grafana, exporters.",
    )
    data: NamespaceConfig = Field(
        default_factory=NamespaceConfig,
        description="`data`: the embeddings server and the vector database.",
    )
    runners: NamespaceConfig = Field(
        default_factory=lambda: NamespaceConfig(quota=QuotaConfig(gpus=1)),
        description="The runner pods' namespace (`arc-runners`): every scale set at its "
        "`max_runners` must fit.",
    )

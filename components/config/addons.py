"""Config of the optional areas: observability and the RAG data layer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._base import DnsLabel, FrozenModel, Problem, raise_if_problems


class AlertThresholds(FrozenModel):
    """Thresholds of the platform's alerts."""

    fallback_rate: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Share of gateway requests served by a fallback over 5 minutes above "
        "which an alert fires (local models failing or in maintenance).",
    )
    ttft_p95_seconds: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="95th percentile time to first token over 5 minutes above which an alert "
        "fires.",
    )
    gpu_memory_fraction: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Share of a GPU's memory in use above which an alert fires.",
    )
    gateway_5xx_rate: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Share of gateway requests answered 5xx over 5 minutes above which an "
        "alert fires.",
    )


class ObservabilityConfig(FrozenModel):
    """Prometheus, Alertmanager, Grafana and the GPU exporter."""

    enabled: bool = Field(
        default=True, description="Deploy Prometheus, Alertmanager, Grafana and the exporters."
    )
    retention_days: int = Field(
        default=7, ge=1, le=3650, description="How long Prometheus keeps metrics."
    )
    storage_gib: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Size of Prometheus' volume; it also stops keeping data near this size.",
    )
    alerts: AlertThresholds = Field(
        default_factory=AlertThresholds, description="Thresholds of the platform's alerts."
    )


class VpaConfig(FrozenModel):
    """Vertical Pod Autoscaler in recommendation mode for the platform's own workloads."""

    enabled: bool = Field(
        default=False,
        description="Install the VPA recommender and a `VerticalPodAutoscaler` with "
        '`updateMode: "Off"` for each platform workload: it recommends requests from '
        "observed use and changes nothing (docs/observability.md#resource-recommendations). "
        "Off: nothing is installed.",
    )


class DataLayerConfig(FrozenModel):
    """Embeddings server and vector database for retrieval-augmented generation."""

    enabled: bool = Field(
        default=False, description="Deploy the embeddings server and the vector database."
    )
    embeddings_model: DnsLabel = Field(
        default="bge-m3",
        description="Name clients call the embeddings model by (`/v1/embeddings`).",
    )
    embeddings_device: Literal["cpu", "gpu"] = Field(
        default="cpu", description="Run the embeddings server on CPU, or on a GPU class."
    )
    embeddings_gpu_class: DnsLabel | None = Field(
        default=None, description="GPU class of the embeddings server; required on `gpu`."
    )
    embeddings_hf_repo: str = Field(
        default="BAAI/bge-m3",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Hugging Face repository the embeddings server loads; it is served under "
        "the name `embeddings_model`.",
    )
    embeddings_revision: str = Field(
        default="5617a9f61b028005a4858fdac845db406aefb181",
        pattern=r"^[0-9a-f]{40}$",
        description="Commit of `embeddings_hf_repo` to load (pinned, never a branch).",
    )
    embeddings_cache_gib: int = Field(
        default=10,
        ge=1,
        le=1_000,
        description="Size of the embeddings server's weight cache volume.",
    )
    vector_db_replicas: int = Field(
        default=1, ge=1, le=9, description="Qdrant nodes (each holds part of the shards)."
    )
    vector_db_storage_gib: int = Field(
        default=20, ge=1, le=10_000, description="Size of each Qdrant node's volume."
    )
    snapshot_schedule: str = Field(
        default="30 3 * * *",
        pattern=r"^(\S+\s+){4}\S+$",
        description="Cron schedule (cluster time zone) of the prod vector DB snapshots to S3.",
    )
    snapshot_retention_days: int = Field(
        default=14, ge=1, le=3650, description="S3 expires snapshots after this many days."
    )

    @model_validator(mode="after")
    def _gpu_class_for_gpu(self) -> DataLayerConfig:
        if self.embeddings_device == "gpu" and self.embeddings_gpu_class is None:
            raise_if_problems(
                [Problem(("embeddings_gpu_class",), "required when embeddings_device is gpu", None)]
            )
        return self

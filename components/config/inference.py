"""Config of the model catalog: local models on cluster GPUs or on LAN GPU hosts."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from ._base import DnsLabel, FrozenModel, Problem, raise_if_problems

HfRepo = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
WeightFormatName = Literal["bf16", "fp16", "fp8", "awq-int4", "gptq-int4"]


class LocalModel(FrozenModel):
    """One model served by vLLM (or a LAN host's server) under `served name` = its key."""

    hf_repo: HfRepo = Field(description="Hugging Face repository of the weights.")
    revision: str = Field(
        description="Full commit SHA of the weights on Hugging Face; branches and tags move, "
        "so they are refused."
    )
    parameters_billion: float = Field(gt=0, le=2000)
    weight_format: WeightFormatName = "bf16"
    layers: int | None = Field(default=None, ge=1, le=512)
    kv_heads: int | None = Field(default=None, ge=1, le=256)
    head_dim: int | None = Field(default=None, ge=16, le=1024)
    context_length: int = Field(default=8192, ge=512, le=1_048_576)
    max_concurrent_sequences: int = Field(default=8, ge=1, le=1024)
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    prefix_caching: bool = True
    chunked_prefill: bool = True
    placement: Literal["cluster", "lan"] = "cluster"
    gpu_class: DnsLabel | None = Field(
        default=None, description="GPU class the model runs on (cluster placement)."
    )
    gpu_count: int = Field(default=1, ge=1, le=8, description="Tensor-parallel size.")
    replicas: int = Field(default=1, ge=1, le=16)
    lan_host: DnsLabel | None = Field(default=None, description="LAN host (lan placement).")
    backend_model: str | None = Field(
        default=None, description="Model id the LAN host serves it as; defaults to hf_repo."
    )
    gated: bool = Field(
        default=False, description="Needs the Hugging Face token (secret `huggingface_token`)."
    )
    meshed: bool = Field(default=True, description="Inject the Linkerd proxy into its pods.")
    cloud_fallback: DnsLabel | None = Field(
        default=None, description="Cloud model served when this one fails or is in maintenance."
    )
    tokens_per_second: float = Field(
        default=500.0,
        gt=0,
        le=1_000_000,
        description="Measured aggregate output throughput of one replica; prices local tokens.",
    )
    first_token_seconds: float = Field(
        default=2.0, gt=0, le=600, description="Expected worst time to first token."
    )
    first_token_deadline_seconds: float | None = Field(
        default=None,
        gt=0,
        le=600,
        description="Time a request waits for this model's first token (streaming or not) "
        "before its cloud fallback is tried; derived from the fit and throughput when unset "
        "(`components/inference/deadlines.py`).",
    )
    stream_idle_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=600,
        description="Longest pause allowed between two events of this model's answer, once "
        "its first token is in, before the stream is treated as stalled and its fallback "
        "finishes it; twice the first-token deadline when unset. Capped by the request's "
        "total deadline.",
    )

    @model_validator(mode="after")
    def _placement_fields(self) -> LocalModel:
        problems: list[Problem] = []
        if not COMMIT_SHA.fullmatch(self.revision):
            problems.append(
                Problem(("revision",), "must be a full 40-character commit SHA", self.revision)
            )
        if self.placement == "cluster" and self.gpu_class is None:
            problems.append(Problem(("gpu_class",), "required for cluster placement", None))
        if self.placement == "lan" and self.lan_host is None:
            problems.append(Problem(("lan_host",), "required for lan placement", None))
        if self.placement == "lan" and self.gpu_class is not None:
            problems.append(
                Problem(("gpu_class",), "comes from the LAN host; leave it unset", self.gpu_class)
            )
        if (
            self.first_token_deadline_seconds is not None
            and self.first_token_deadline_seconds < self.first_token_seconds
        ):
            problems.append(
                Problem(
                    ("first_token_deadline_seconds",),
                    f"shorter than first_token_seconds ({self.first_token_seconds}s): a "
                    "healthy server would lose every request to the fallback",
                    self.first_token_deadline_seconds,
                )
            )
        raise_if_problems(problems)
        return self


class InferenceConfig(FrozenModel):
    """The local model catalog, keyed by the model name served to clients."""

    models: dict[DnsLabel, LocalModel] = Field(default_factory=dict)
    cache_storage_class: DnsLabel | None = Field(
        default=None,
        description="StorageClass of each model's weight cache (PVC); the cluster's default "
        "class when unset (k3s: `local-path`, node-local and ReadWriteOnce).",
    )
    cache_access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        default="ReadWriteOnce",
        description="Access mode of the weight caches. With `ReadWriteOnce` (node-local "
        "`local-path`) every replica of a model, and its rollout surge pod, runs on the node "
        "holding its cache; `ReadWriteMany` (an NFS or Longhorn class) lets them spread "
        "over the nodes of the GPU class.",
    )

"""Config of the model catalog: local models on cluster GPUs or on LAN GPU hosts."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from components.inference.catalog import PRESETS
from components.inference.vllm_flags import extra_args_problems
from components.versions import parse_image

from ._base import ConfigProblems, DnsLabel, FrozenModel, Problem, raise_if_problems
from .names import ServedName, kubernetes_name

HfRepo = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
WeightFormatName = Literal["bf16", "fp16", "fp8", "awq-int4", "gptq-int4", "mxfp4"]


class ModelAutoscaling(FrozenModel):
    """Replicas of an in-cluster model server that follow demand (KEDA,
    docs/inference.md#demand-following-model-servers)."""

    min: Literal[0, 1] = Field(
        description="Replicas kept while idle: `0` stops the server and frees its GPUs (the "
        "model's `cloud_fallback` answers meanwhile and the first request wakes it); `1` "
        "keeps one warm."
    )
    max: int = Field(
        ge=1,
        le=16,
        description="Most replicas under load. The GPU class must hold this many pods beside "
        "the ceilings of the class's other models, or the config is refused with how many fit.",
    )
    idle_minutes: int = Field(
        default=30,
        ge=5,
        le=1440,
        description="Minutes with no request for the model at the gateway (fallbacks "
        "included) and none running on it before it scales down to `min`; also how long "
        "extra replicas are kept after their load is gone.",
    )


class LocalModel(FrozenModel):
    """One model served by vLLM (or a LAN host's server) under `served name` = its key."""

    preset: str | None = Field(
        default=None,
        description="A known architecture of `components/inference/catalog.py` "
        "(docs/models.md lists them): fills hf_repo, parameters_billion, layers, kv_heads, "
        "head_dim, sliding_window, full_attention_layers, native_context, weight_format, "
        "expert_parameters_billion and gated; any of them set here wins.",
    )
    hf_repo: HfRepo = Field(description="Hugging Face repository of the weights.")
    revision: str = Field(
        description="Full commit SHA of the weights on Hugging Face; branches and tags move, "
        "so they are refused."
    )
    parameters_billion: float = Field(
        gt=0,
        le=2000,
        description="Total parameters in billions; with weight_format, the memory the weights "
        "take in the fit check.",
    )
    weight_format: WeightFormatName = Field(
        default="bf16",
        description="Format of the checkpoint's weights. `mxfp4` (gpt-oss): the MoE experts "
        "at 4.25 bits per weight, everything else in bf16; needs expert_parameters_billion.",
    )
    expert_parameters_billion: float | None = Field(
        default=None,
        gt=0,
        le=2000,
        description="Parameters of the model's MoE experts (layers x experts x 3 x hidden "
        "size x expert size); what weight_format `mxfp4` stores in 4 bits.",
    )
    layers: int | None = Field(
        default=None,
        ge=1,
        le=512,
        description="`num_hidden_layers` of config.json; sizes the KV cache in the fit check "
        "(with kv_heads and head_dim). The preset's when unset.",
    )
    kv_heads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="`num_key_value_heads` of config.json (grouped-query attention).",
    )
    head_dim: int | None = Field(
        default=None,
        ge=16,
        le=1024,
        description="`head_dim` of config.json (hidden size / attention heads when absent).",
    )
    sliding_window: int | None = Field(
        default=None,
        ge=1,
        le=1_048_576,
        description="`sliding_window` of config.json: the tokens a sliding-window layer "
        "attends to; with full_attention_layers, the KV cache of the other layers is "
        "bounded by it. Unset: every layer keeps the whole context.",
    )
    full_attention_layers: int | None = Field(
        default=None,
        ge=0,
        le=512,
        description="How many of `layers` attend the whole context (`full_attention` in "
        "config.json's `layer_types`, or one layer in `sliding_window_pattern`); the others "
        "use sliding_window. Set with sliding_window.",
    )
    native_context: int | None = Field(
        default=None,
        ge=512,
        le=10_485_760,
        description="`max_position_embeddings` of the model's config.json: the longest "
        "context vLLM serves without RoPE scaling; context_length may not exceed it.",
    )
    context_length: int = Field(
        default=8192,
        ge=512,
        le=1_048_576,
        description="Longest context served (`--max-model-len`); shortened with a warning when "
        "the KV cache for max_concurrent_sequences of it does not fit, unless strict_context.",
    )
    strict_context: bool | None = Field(
        default=None,
        description="Refuse the config when the fit check would shorten this model's "
        "context, instead of serving the shorter one with a warning; "
        "`inference.strict_context` when unset.",
    )
    max_concurrent_sequences: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Sequences one replica runs at once (`--max-num-seqs`); the fit check "
        "reserves a full context of KV cache for each.",
    )
    kv_cache_dtype: Literal["auto", "fp8"] = Field(
        default="auto",
        description="`fp8` halves the KV cache (`--kv-cache-dtype`) at a small accuracy cost; "
        "`auto` keeps the weights' type.",
    )
    prefix_caching: bool = Field(
        default=True,
        description="Reuse the KV cache of a shared prompt prefix (`--enable-prefix-caching`).",
    )
    chunked_prefill: bool = Field(
        default=True,
        description="Split long prompts into chunks batched with decoding "
        "(`--enable-chunked-prefill`), so one long prompt does not stall the streams.",
    )
    placement: Literal["cluster", "lan"] = Field(
        default="cluster",
        description="`cluster`: a vLLM Deployment on nodes of gpu_class; `lan`: a server on "
        "the LAN GPU host lan_host, reached through a selector-less Service.",
    )
    gpu_class: DnsLabel | None = Field(
        default=None, description="GPU class the model runs on (cluster placement)."
    )
    gpu_count: int = Field(default=1, ge=1, le=8, description="Tensor-parallel size.")
    replicas: int = Field(
        default=1,
        ge=1,
        le=16,
        description="vLLM pods of this model (cluster placement), each on gpu_count GPUs; leave "
        "unset with `autoscaling`.",
    )
    autoscaling: ModelAutoscaling | None = Field(
        default=None,
        description="Scale the server with demand between `min` and `max` replicas instead "
        "of running `replicas` (cluster placement; needs `observability.enabled`, and a "
        "`cloud_fallback` when `min` is 0). Off when unset.",
    )
    lan_host: DnsLabel | None = Field(default=None, description="LAN host (lan placement).")
    lan_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the host's service that serves it (`cluster.lan_gpu_hosts."
        "<host>.services`); may be left out when the host has one service.",
    )
    backend_model: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][\w.:/-]{0,199}$",
        description="Ollama's name of the model with an explicit tag (`qwen3:8b`, "
        "`hf.co/<repo>:<quant>`; not `latest`); required on an Ollama service, refused "
        "elsewhere (vLLM serves the model under its catalog name). Ollama pulls by tag and "
        "has no digest to pin: a tag re-pushed upstream is what the next pull gets.",
    )
    extra_args: tuple[str, ...] = Field(
        default=(),
        description="More `vllm serve` options, each `--flag` or `--flag=value` (e.g. "
        "`--enable-auto-tool-choice`, `--tool-call-parser=hermes`); options the platform "
        "derives and unchecked ones are refused, with the reason.",
    )
    image: str | None = Field(
        default=None,
        description="Another vLLM image for this model, pinned: `registry/path:<exact tag>` "
        "with an optional `@sha256:` digest; the pin of `components/versions.py` when unset.",
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

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        preset = PRESETS.get(str(data["preset"]))
        if preset is None:
            known = ", ".join(sorted(PRESETS))
            raise ConfigProblems(
                [Problem(("preset",), f"not in the catalog; known: {known}", data["preset"])]
            )
        return {**preset.fields(), **data}

    @model_validator(mode="after")
    def _placement_fields(self) -> LocalModel:
        problems: list[Problem] = []
        if not COMMIT_SHA.fullmatch(self.revision):
            problems.append(
                Problem(
                    ("revision",),
                    "must be a full 40-character commit SHA (branches and tags move): open "
                    f"https://huggingface.co/{self.hf_repo}/commits/main and copy the commit "
                    f"id, or run `git ls-remote https://huggingface.co/{self.hf_repo} main`",
                    self.revision,
                )
            )
        if self.native_context is not None and self.context_length > self.native_context:
            problems.append(
                Problem(
                    ("context_length",),
                    f"longer than the model's native context ({self.native_context} tokens, "
                    "max_position_embeddings of its config.json); vLLM refuses it without "
                    "RoPE scaling",
                    self.context_length,
                )
            )
        problems.extend(self._shape_problems())
        if self.backend_model is not None:
            _, _, tag = self.backend_model.rpartition("/")[2].partition(":")
            if tag in ("", "latest"):
                problems.append(
                    Problem(
                        ("backend_model",),
                        "name an explicit tag other than latest (qwen3:8b, "
                        "hf.co/<repo>:<quant>): Ollama pulls by tag, cannot pin a digest, "
                        "and latest moves with every release",
                        self.backend_model,
                    )
                )
        for index, reason in extra_args_problems(self.extra_args):
            problems.append(Problem(("extra_args", index), reason, self.extra_args[index]))
        if self.image is not None:
            try:
                parse_image(self.image)
            except ValueError as error:
                problems.append(Problem(("image",), f"not pinned: {error}", self.image))
        if self.placement == "cluster" and self.gpu_class is None:
            problems.append(Problem(("gpu_class",), "required for cluster placement", None))
        if self.placement == "lan" and self.lan_host is None:
            problems.append(Problem(("lan_host",), "required for lan placement", None))
        if self.placement == "lan" and self.gpu_class is not None:
            problems.append(
                Problem(("gpu_class",), "comes from the LAN host; leave it unset", self.gpu_class)
            )
        problems += self._autoscaling_problems()
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

    def _shape_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.weight_format == "mxfp4" and self.expert_parameters_billion is None:
            problems.append(
                Problem(
                    ("expert_parameters_billion",),
                    "required with weight_format mxfp4: it stores the MoE experts in 4 bits "
                    "and everything else in bf16",
                    None,
                )
            )
        experts = self.expert_parameters_billion
        if experts is not None and experts >= self.parameters_billion:
            problems.append(
                Problem(
                    ("expert_parameters_billion",),
                    f"must be less than parameters_billion ({self.parameters_billion})",
                    experts,
                )
            )
        window, full = self.sliding_window, self.full_attention_layers
        if (window is None) != (full is None):
            missing = "full_attention_layers" if full is None else "sliding_window"
            problems.append(
                Problem(
                    (missing,),
                    "set sliding_window and full_attention_layers together (how many layers "
                    "attend the whole context, and the window of the others)",
                    None,
                )
            )
        elif window is not None and not (self.layers and self.kv_heads and self.head_dim):
            problems.append(
                Problem(
                    ("sliding_window",),
                    "needs layers, kv_heads and head_dim: the KV cache is sized per layer",
                    window,
                )
            )
        elif full is not None and self.layers is not None and full > self.layers:
            problems.append(
                Problem(
                    ("full_attention_layers",),
                    f"more than the model's layers ({self.layers})",
                    full,
                )
            )
        return problems

    def _autoscaling_problems(self) -> list[Problem]:
        scaling = self.autoscaling
        if scaling is None:
            return []
        problems = []
        if self.placement != "cluster":
            problems.append(
                Problem(
                    ("autoscaling",),
                    "only servers on cluster GPUs scale; a LAN host runs its own",
                    self.placement,
                )
            )
        if "replicas" in self.model_fields_set:
            problems.append(
                Problem(
                    ("replicas",),
                    "fixed replicas and autoscaling exclude each other: leave replicas unset "
                    "and give autoscaling.max",
                    self.replicas,
                )
            )
        if scaling.min == 0 and self.cloud_fallback is None:
            problems.append(
                Problem(
                    ("autoscaling", "min"),
                    "0 stops the server when idle, so a cloud_fallback must answer until it "
                    "is back; set cloud_fallback or min: 1",
                    scaling.min,
                )
            )
        return problems

    @property
    def ceiling_replicas(self) -> int:
        """Most replicas the model runs: `autoscaling.max`, else `replicas`."""
        return self.autoscaling.max if self.autoscaling is not None else self.replicas


class InferenceConfig(FrozenModel):
    """The local model catalog, keyed by the model name served to clients."""

    models: dict[ServedName, LocalModel] = Field(
        default_factory=dict,
        description="Keyed by the name clients call (letters, digits, `.`, `_`, `-`); "
        "Kubernetes objects use its lower-case form with `-` for `.` and `_`.",
    )
    strict_context: bool = Field(
        default=False,
        description="Refuse the config when the fit check would shorten any model's "
        "context (a model's own `strict_context` wins).",
    )
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

    @model_validator(mode="after")
    def _names(self) -> InferenceConfig:
        seen: dict[str, str] = {}
        problems: list[Problem] = []
        for name in self.models:
            derived = kubernetes_name(name)
            if derived in seen:
                problems.append(
                    Problem(
                        ("models", name),
                        f"its Kubernetes name {derived!r} is that of model {seen[derived]!r} "
                        "too (names differing only in case, `.`, `_` or `-` clash)",
                        name,
                    )
                )
            seen.setdefault(derived, name)
        raise_if_problems(problems)
        return self

    def strict(self, name: str) -> bool:
        """Whether a shortened context is an error for this model."""
        own = self.models[name].strict_context
        return self.strict_context if own is None else own

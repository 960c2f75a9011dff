"""Does a model fit its GPUs? A VRAM estimate made at config time, before any deploy.

    total = weights + runtime overhead + KV cache   <=   usable memory

* weights = parameters x bytes per parameter of the checkpoint's weight format:
  bf16/fp16 store 2 bytes per weight (IEEE 754 half / bfloat16). fp8 stores 1 byte per
  weight plus per-channel scales and the embedding and output layers kept in 16 bit:
  1.1. The 4-bit formats (AWQ, GPTQ) store 0.5 byte per weight, plus a 16-bit scale and
  a 4-bit zero point per group of 128 weights (`"group_size": 128` in the
  `quantization_config` of Qwen/Qwen3-8B-AWQ; 2.5 bytes / 128 = 0.02 byte), plus the
  embedding and output layers left in 16 bit; with the 150k-token vocabularies of
  current 4-14B models those layers are 8-15% of the parameters, so 0.7 byte per
  parameter on average (Qwen3-8B-AWQ: 6.0 GB of safetensors for 8.19B = 0.73).
* KV cache per token = 2 (key and value) x layers x KV heads x head size x bytes per
  element (2 for a 16-bit cache, 1 for `kv_cache_dtype: fp8`); vLLM's paged attention
  holds the cache for every token of every running sequence, so the stack's wanted
  `context_length x max_concurrent_sequences` tokens must fit. Without the model's shape
  in config, 32 KiB per billion parameters stands in (above every grouped-query model of
  the catalog: Qwen3-8B needs 18 KiB per billion, Llama-3.1-8B 16).
* runtime overhead: 1.5 GiB per GPU for the CUDA context and library workspaces (about
  0.6 GiB), the CUDA graphs vLLM captures (vLLM logs "Estimated CUDA graph memory:
  0.52 GiB" for Qwen3-8B, LMCache/LMCache#3430, and 0.36 GiB per rank for a TP=2 model,
  gpustack/runner#251; since vLLM 0.21 this is inside the `--gpu-memory-utilization`
  budget) and the activation peak of a 2048-token chunked prefill (about 0.4 GiB for
  models up to 14B).
* usable memory: 92% of the GPUs' memory; the rest is left for the driver, allocator
  fragmentation and a display on workstation cards. A GPU class shared by
  time-slicing gives each pod only `1 / time_slicing_replicas` of it: time-slicing
  shares compute, not memory, and `--gpu-memory-utilization` is a per-instance
  fraction of the whole GPU (vLLM engine arguments: "if you have two vLLM instances
  running on the same GPU, you can set the GPU memory utilization to 0.5 for each").

A LAN GPU host runs several servers on the same GPUs (one vLLM process per model, or
Ollama with several models), each model with all of the host's GPUs: together they must
fit the host's usable memory. Each model gets a share of it in proportion to what it
needs at its wanted context (`lan_host_estimates`), and is estimated within that share
as above, so the sum of their `--gpu-memory-utilization` never exceeds the usable 92%.

When the wanted tokens do not fit but a context of at least `MIN_CONTEXT` tokens does for
the wanted concurrency, the model fits with that shorter `--max-model-len` (a multiple of
256, itself a multiple of vLLM's 16-token KV block); otherwise the config is refused with
the arithmetic. `--gpu-memory-utilization` is what the estimate needs plus 3 points of
headroom, never above the usable share, so vLLM's own profiling at start lands on the
same budget and the KV pool it sizes holds at least the tokens estimated here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from components.config.cluster import GpuClass, GpuSharing
from components.config.inference import LocalModel

GIB = 1024**3
BYTES_PER_PARAMETER = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.1,
    "awq-int4": 0.7,
    "gptq-int4": 0.7,
}
KV_BYTES = {"auto": 2, "fp8": 1}
FALLBACK_KV_BYTES_PER_BILLION = 32 * 1024
OVERHEAD_GIB_PER_GPU = 1.5
USABLE_FRACTION = 0.92
UTILIZATION_HEADROOM = 0.03
MIN_CONTEXT = 2048
CONTEXT_STEP = 256


@dataclass(frozen=True)
class Fit:
    """The estimate for one model on its GPUs, and what vLLM is told."""

    fits: bool
    weights_gib: float
    overhead_gib: float
    kv_gib_per_1k_tokens: float
    kv_gib: float
    usable_gib: float
    """Memory this model may use: its share of its GPUs, after the driver's reserve."""
    max_model_len: int
    gpu_memory_utilization: float
    arithmetic: str
    """The calculation in one line, shown in config errors and the docs."""

    @property
    def weights_bytes(self) -> float:
        """Size of the weights on disk and in memory, bytes."""
        return self.weights_gib * GIB


def kv_bytes_per_token(model: LocalModel) -> float:
    """KV cache bytes one token of one sequence holds."""
    if model.layers and model.kv_heads and model.head_dim:
        return 2 * model.layers * model.kv_heads * model.head_dim * KV_BYTES[model.kv_cache_dtype]
    return (
        model.parameters_billion
        * FALLBACK_KV_BYTES_PER_BILLION
        * KV_BYTES[model.kv_cache_dtype]
        / 2
    )


def weights_gib(model: LocalModel) -> float:
    """Memory the weights take, GiB."""
    return model.parameters_billion * 1e9 * BYTES_PER_PARAMETER[model.weight_format] / GIB


def gpu_share(gpu: GpuClass) -> float:
    """Fraction of one physical GPU a pod of the class gets (time-slicing divides it)."""
    if gpu.sharing is GpuSharing.TIME_SLICING:
        return 1 / gpu.time_slicing_replicas
    return 1.0


def estimate(model: LocalModel, gpu: GpuClass) -> Fit:
    """The VRAM estimate of a model on `gpu_count` GPUs of a class."""
    share = gpu_share(gpu)
    note = f" x 1/{round(1 / share)} (time-sliced)" if share < 1 else ""
    return _estimate(model, gpu, share, note)


def needed_gib(model: LocalModel, gpus: int, context: int) -> float:
    """What a model needs on `gpus` GPUs with `context` tokens for each of its sequences."""
    kv = kv_bytes_per_token(model) / GIB * context * model.max_concurrent_sequences
    return weights_gib(model) + OVERHEAD_GIB_PER_GPU * gpus + kv


def lan_host_estimates(
    models: Mapping[str, LocalModel], gpu: GpuClass, gpus: int
) -> dict[str, Fit]:
    """The estimates of the models a LAN host serves together on all of its `gpus` GPUs.

    Each model first gets what it needs at the shortest context it may have
    (`MIN_CONTEXT`); what is left of the host's usable memory goes to the models in
    proportion to the rest of what they ask for, so when the host is short every
    model's extra context is cut by the same fraction. A model with the host to itself
    is estimated as a cluster model on the same GPUs.
    """
    on_host = {name: m.model_copy(update={"gpu_count": gpus}) for name, m in models.items()}
    usable = gpu.memory_gib * gpus * USABLE_FRACTION
    least = {n: needed_gib(m, gpus, min(MIN_CONTEXT, m.context_length)) for n, m in on_host.items()}
    wanted = {n: needed_gib(m, gpus, m.context_length) for n, m in on_host.items()}
    spare = usable - sum(least.values())
    extra = sum(wanted.values()) - sum(least.values())
    fits: dict[str, Fit] = {}
    for name, model in sorted(on_host.items()):
        if len(on_host) == 1:
            share = 1.0
        elif spare <= 0 or extra <= 0:
            share = wanted[name] / sum(wanted.values())
        else:
            grant = least[name] + min(spare, extra) * (wanted[name] - least[name]) / extra
            grant += max(spare - extra, 0) * wanted[name] / sum(wanted.values())
            share = grant / usable
        note = f" x {share:.2f} (its share beside the host's other models)" if share < 1 else ""
        fits[name] = _estimate(model, gpu, share, note)
    return fits


def _estimate(model: LocalModel, gpu: GpuClass, share: float, share_note: str) -> Fit:
    total_gib = gpu.memory_gib * model.gpu_count
    # Whole percent, as vLLM is told; every figure below stays within it.
    cap = math.floor(USABLE_FRACTION * share * 100) / 100
    usable = total_gib * cap
    weights = weights_gib(model)
    overhead = OVERHEAD_GIB_PER_GPU * model.gpu_count
    per_token_gib = kv_bytes_per_token(model) / GIB
    budget = usable - weights - overhead
    concurrency = model.max_concurrent_sequences
    wanted_kv = per_token_gib * model.context_length * concurrency
    if wanted_kv <= budget:
        max_len = model.context_length
    else:
        fitting = budget / (per_token_gib * concurrency) if budget > 0 else 0
        max_len = int(fitting // CONTEXT_STEP) * CONTEXT_STEP
    fits = max_len >= min(MIN_CONTEXT, model.context_length)
    kv = per_token_gib * max_len * concurrency
    needed = weights + overhead + kv
    # Only a fitting estimate has a meaningful share (a tiny GPU would overflow it).
    utilization = (
        min(cap, math.ceil((needed / total_gib + UTILIZATION_HEADROOM) * 100) / 100)
        if fits
        else cap
    )
    arithmetic = (
        f"weights {model.parameters_billion}B x {BYTES_PER_PARAMETER[model.weight_format]} B "
        f"({model.weight_format}) = {weights:.2f} GiB; overhead {overhead:.2f} GiB; "
        f"KV {per_token_gib * 1024 * 1024:.0f} KiB/token x {model.context_length} tokens x "
        f"{concurrency} sequences = {wanted_kv:.2f} GiB; usable {USABLE_FRACTION:.0%} of "
        f"{model.gpu_count} x {gpu.memory_gib} GiB"
    )
    arithmetic += share_note
    arithmetic += f" = {usable:.2f} GiB; needs {weights + overhead + wanted_kv:.2f} GiB"
    if fits and max_len < model.context_length:
        arithmetic += f"; context shortened to {max_len} tokens to fit"
    return Fit(
        fits=fits,
        weights_gib=weights,
        overhead_gib=overhead,
        kv_gib_per_1k_tokens=per_token_gib * 1000,
        kv_gib=kv,
        usable_gib=usable,
        max_model_len=max_len,
        gpu_memory_utilization=utilization,
        arithmetic=arithmetic,
    )

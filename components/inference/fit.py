"""Does a model fit its GPUs? A VRAM estimate made at config time, before any deploy.

    total = weights + runtime overhead + KV cache

* weights = parameters x bytes per parameter of the weight format:
  bf16/fp16 store 2 bytes per weight (IEEE half formats). fp8 stores 1 byte per weight
  plus per-channel scales and the embedding and output layers kept in 16 bit: 1.1. The
  4-bit formats (AWQ, GPTQ) store 0.5 byte per weight, plus a 16-bit scale and a 4-bit
  zero point per group of 128 weights (2.5/128 = 0.02 byte), plus the embedding and output
  layers left in 16 bit; with the 150k-token vocabularies of current 4-14B models those
  layers are 8-15% of the parameters, so 0.7 byte per parameter on average.
* KV cache per token = 2 (key and value) x layers x KV heads x head size x bytes per
  element (2 for a 16-bit cache, 1 for `kv_cache_dtype: fp8`); vLLM's paged attention
  holds the cache for every token of every running sequence, so the stack's wanted
  `context_length x max_concurrent_sequences` tokens must fit. Without the model's shape
  in config, 32 KiB per billion parameters stands in (above every grouped-query model of
  the catalog: Qwen3-8B needs 18 KiB per billion, Llama-3.1-8B 16).
* runtime overhead: 1.5 GiB per GPU for the CUDA context and library workspaces (about
  0.6 GiB), the CUDA graphs vLLM captures for decoding (up to 0.5 GiB) and the activation
  peak of a 2048-token chunked prefill (about 0.4 GiB for models up to 14B).
* usable memory: 92% of the GPUs' memory; the rest is left for the driver, allocator
  fragmentation and a display on workstation cards.

When the wanted tokens do not fit but a context of at least `MIN_CONTEXT` tokens does for
the wanted concurrency, the model fits with that shorter `--max-model-len` (rounded down
to vLLM's 16-token block multiple of 256); otherwise the config is refused with the
arithmetic. `--gpu-memory-utilization` is what the estimate needs plus 3 points of
headroom, never above the usable 92%, so vLLM's own profiling lands on the same budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.config.cluster import GpuClass
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


def estimate(model: LocalModel, gpu: GpuClass) -> Fit:
    """The VRAM estimate of a model on `gpu_count` GPUs of a class."""
    total_gib = gpu.memory_gib * model.gpu_count
    usable = total_gib * USABLE_FRACTION
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
    utilization = min(
        USABLE_FRACTION, math.ceil((needed / total_gib + UTILIZATION_HEADROOM) * 100) / 100
    )
    arithmetic = (
        f"weights {model.parameters_billion}B x {BYTES_PER_PARAMETER[model.weight_format]} B "
        f"({model.weight_format}) = {weights:.2f} GiB; overhead {overhead:.2f} GiB; "
        f"KV {per_token_gib * 1024 * 1024:.0f} KiB/token x {model.context_length} tokens x "
        f"{concurrency} sequences = {wanted_kv:.2f} GiB; usable {USABLE_FRACTION:.0%} of "
        f"{model.gpu_count} x {gpu.memory_gib} GiB = {usable:.2f} GiB"
    )
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

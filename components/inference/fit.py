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
  parameter on average (Qwen3-8B-AWQ: 6.0 GB of safetensors for 8.19B = 0.73). mxfp4
  (gpt-oss) stores the MoE experts' weights as 4-bit values with one 8-bit scale per
  block of 32, 4.25 bits per weight, and keeps attention, router and embeddings in bf16:
  `expert_parameters_billion` x 0.53 + the rest x 2 (gpt-oss-20b: 12.8 GiB, as its model
  card's checkpoint size).
* KV cache per token and layer = 2 (key and value) x KV heads x head size x bytes per
  element (2 for a 16-bit cache, 1 for `kv_cache_dtype: fp8`); vLLM's paged attention
  holds the cache for every token of every running sequence, so the stack's wanted
  `context_length x max_concurrent_sequences` tokens must fit in every layer that attends
  the whole context. Without the model's shape in config, 32 KiB per billion parameters
  per token stands in (above every grouped-query model of the catalog: Qwen3-8B needs 18
  KiB per billion, Llama-3.1-8B 16).
* Sliding-window layers (Gemma 3: five of six, window 1024; gpt-oss: every other one,
  window 128) hold only the window: vLLM's hybrid KV cache manager frees the blocks that
  fall out of it, and admits a request against `min(window - 1 + max_num_batched_tokens,
  max_model_len)` tokens plus one block (`SlidingWindowSpec.max_memory_usage_bytes`,
  vllm/v1/kv_cache_interface.py). The scheduler's per-step budget
  `--max-num-batched-tokens` is shared by the running sequences, so together they hold at
  most `sequences x (window + 2 blocks) + max_num_batched_tokens` tokens there, and never
  more than the whole context. The budget is the model's `--max-num-batched-tokens`
  extra argument, else `vllm serve`'s default: 8192 on GPUs of 70 GiB or more, 2048 below
  (`EngineArgs.get_batch_defaults`, vllm/engine/arg_utils.py; the A100, which vLLM keeps
  at 2048, is counted at 8192), or the whole context without chunked prefill (vLLM then
  schedules a prompt in one step). vLLM groups the layers of each kind into KV groups of
  one size (the smaller count, or the larger when it is under 1.5 times the smaller) and
  pads the last group (`_get_kv_cache_groups_uniform_page_size`,
  vllm/v1/core/kv_cache_utils.py): Gemma 3 27B's 52 sliding layers take 60 slots beside
  its 10 full ones. `--disable-sliding-window` makes every layer a full one.
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
    "mxfp4": 4.25 / 8,
}
"""Bytes per parameter of each weight format; for mxfp4, of the MoE experts only."""
UNQUANTIZED_BYTES = 2.0
"""What mxfp4 checkpoints keep in bf16: attention, router, embeddings."""
KV_BYTES = {"auto": 2, "fp8": 1}
FALLBACK_KV_BYTES_PER_BILLION = 32 * 1024
OVERHEAD_GIB_PER_GPU = 1.5
USABLE_FRACTION = 0.92
UTILIZATION_HEADROOM = 0.03
MIN_CONTEXT = 2048
CONTEXT_STEP = 256
KV_BLOCK_TOKENS = 16
"""vLLM's KV cache block on NVIDIA GPUs (`--block-size` default)."""
LARGE_GPU_GIB = 70
BATCHED_TOKENS = {"small": 2048, "large": 8192}
"""`vllm serve`'s default `--max-num-batched-tokens` below and from `LARGE_GPU_GIB`."""
GROUP_SIZE_SLACK = 1.5
"""vLLM takes the larger layer count as its KV group size when under this many times the
smaller (kv_cache_utils.py)."""


@dataclass(frozen=True)
class Fit:
    """The estimate for one model on its GPUs, and what vLLM is told."""

    fits: bool
    weights_gib: float
    overhead_gib: float
    kv_gib_per_1k_tokens: float
    """KV cache of 1000 tokens of one sequence in every layer (before any window bounds it)."""
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


@dataclass(frozen=True)
class KvLayers:
    """A model's layers as vLLM's KV cache holds them: those that keep the whole context
    and those bounded by the sliding window, each kind padded to vLLM's KV group size."""

    full: int
    windowed: int = 0
    window: int = 0

    @property
    def group(self) -> int:
        """vLLM's KV group size: layers of one kind that share a block table."""
        if not self.full or not self.windowed:
            return max(self.full, self.windowed, 1)
        small, large = sorted((self.full, self.windowed))
        return large if large < small * GROUP_SIZE_SLACK else small

    @property
    def full_slots(self) -> int:
        """Full-context layers, padded to whole groups."""
        return math.ceil(self.full / self.group) * self.group

    @property
    def windowed_slots(self) -> int:
        """Sliding-window layers, padded to whole groups."""
        return math.ceil(self.windowed / self.group) * self.group


def kv_layers(model: LocalModel) -> KvLayers:
    """The layers of `model` as vLLM's KV cache holds them."""
    layers = model.layers or 0
    if (
        model.sliding_window is None
        or model.full_attention_layers is None
        or "--disable-sliding-window" in model.extra_args
    ):
        return KvLayers(full=layers)
    return KvLayers(
        full=model.full_attention_layers,
        windowed=layers - model.full_attention_layers,
        window=model.sliding_window,
    )


def batched_tokens(model: LocalModel, gpu: GpuClass, context: int) -> int:
    """vLLM's per-step token budget (`--max-num-batched-tokens`) for `model` on `gpu`."""
    if not model.chunked_prefill:
        return context
    for arg in model.extra_args:
        flag, _, value = arg.partition("=")
        if flag == "--max-num-batched-tokens":
            return int(value)
    return BATCHED_TOKENS["large" if gpu.memory_gib >= LARGE_GPU_GIB else "small"]


def kv_bytes_per_layer_token(model: LocalModel) -> float:
    """KV cache bytes one token of one sequence holds in one layer (with the model's shape)."""
    return 2 * (model.kv_heads or 0) * (model.head_dim or 0) * KV_BYTES[model.kv_cache_dtype]


def kv_bytes_per_token(model: LocalModel) -> float:
    """KV cache bytes one token of one sequence holds in every layer."""
    if model.layers and model.kv_heads and model.head_dim:
        return model.layers * kv_bytes_per_layer_token(model)
    return (
        model.parameters_billion
        * FALLBACK_KV_BYTES_PER_BILLION
        * KV_BYTES[model.kv_cache_dtype]
        / 2
    )


def windowed_tokens(model: LocalModel, gpu: GpuClass, context: int) -> int:
    """Tokens all of `model`'s sequences hold together in one sliding-window layer."""
    sequences = model.max_concurrent_sequences
    per_sequence = (model.sliding_window or 0) + 2 * KV_BLOCK_TOKENS
    return min(context * sequences, sequences * per_sequence + batched_tokens(model, gpu, context))


def kv_bytes(model: LocalModel, gpu: GpuClass, context: int) -> float:
    """KV cache bytes `max_concurrent_sequences` sequences of `context` tokens hold."""
    sequences = model.max_concurrent_sequences
    layers = kv_layers(model)
    if not layers.windowed:
        return kv_bytes_per_token(model) * context * sequences
    held = layers.full_slots * context * sequences
    held += layers.windowed_slots * windowed_tokens(model, gpu, context)
    return kv_bytes_per_layer_token(model) * held


def weights_gib(model: LocalModel) -> float:
    """Memory the weights take, GiB."""
    if model.weight_format == "mxfp4":
        experts = model.expert_parameters_billion or 0.0
        rest = model.parameters_billion - experts
        total = experts * BYTES_PER_PARAMETER["mxfp4"] + rest * UNQUANTIZED_BYTES
        return total * 1e9 / GIB
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


def needed_gib(model: LocalModel, gpu: GpuClass, gpus: int, context: int) -> float:
    """What a model needs on `gpus` GPUs with `context` tokens for each of its sequences."""
    return weights_gib(model) + OVERHEAD_GIB_PER_GPU * gpus + kv_bytes(model, gpu, context) / GIB


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
    least = {
        n: needed_gib(m, gpu, gpus, min(MIN_CONTEXT, m.context_length)) for n, m in on_host.items()
    }
    wanted = {n: needed_gib(m, gpu, gpus, m.context_length) for n, m in on_host.items()}
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


def _longest_context(model: LocalModel, gpu: GpuClass, budget_gib: float) -> int:
    """`context_length` when its KV cache fits `budget_gib`, else the longest multiple of
    `CONTEXT_STEP` that does (0 if none)."""
    if kv_bytes(model, gpu, model.context_length) / GIB <= budget_gib:
        return model.context_length
    if budget_gib <= 0:
        return 0
    low, high = 0, model.context_length // CONTEXT_STEP
    while low < high:  # the KV cache grows with the context: about 12 halvings at most
        middle = (low + high + 1) // 2
        if kv_bytes(model, gpu, middle * CONTEXT_STEP) / GIB <= budget_gib:
            low = middle
        else:
            high = middle - 1
    return low * CONTEXT_STEP


def _weights_arithmetic(model: LocalModel, weights: float) -> str:
    if model.weight_format == "mxfp4":
        experts = model.expert_parameters_billion or 0.0
        rest = model.parameters_billion - experts
        return (
            f"weights {experts}B x {BYTES_PER_PARAMETER['mxfp4']:.2f} B (mxfp4 experts) + "
            f"{rest:.2f}B x {UNQUANTIZED_BYTES} B (bf16) = {weights:.2f} GiB"
        )
    return (
        f"weights {model.parameters_billion}B x {BYTES_PER_PARAMETER[model.weight_format]} B "
        f"({model.weight_format}) = {weights:.2f} GiB"
    )


def _kv_arithmetic(model: LocalModel, gpu: GpuClass, wanted_kv: float) -> str:
    context, sequences = model.context_length, model.max_concurrent_sequences
    layers = kv_layers(model)
    if not layers.windowed:
        per_token = kv_bytes_per_token(model) / 1024
        return (
            f"KV {per_token:.0f} KiB/token x {context} tokens x {sequences} sequences = "
            f"{wanted_kv:.2f} GiB"
        )
    padding = (
        f" ({layers.windowed} padded to vLLM's KV groups of {layers.group})"
        if layers.windowed_slots != layers.windowed
        else ""
    )
    return (
        f"KV {kv_bytes_per_layer_token(model) / 1024:.0f} KiB/token/layer x "
        f"({layers.full_slots} full-attention layers x {context} tokens x {sequences} "
        f"sequences + {layers.windowed_slots} sliding-window layers{padding} x "
        f"{windowed_tokens(model, gpu, context)} tokens: window {layers.window}, "
        f"{batched_tokens(model, gpu, context)} batched tokens) = {wanted_kv:.2f} GiB"
    )


def _estimate(model: LocalModel, gpu: GpuClass, share: float, share_note: str) -> Fit:
    total_gib = gpu.memory_gib * model.gpu_count
    # Whole percent, as vLLM is told; every figure below stays within it.
    cap = math.floor(USABLE_FRACTION * share * 100) / 100
    usable = total_gib * cap
    weights = weights_gib(model)
    overhead = OVERHEAD_GIB_PER_GPU * model.gpu_count
    budget = usable - weights - overhead
    wanted_kv = kv_bytes(model, gpu, model.context_length) / GIB
    max_len = _longest_context(model, gpu, budget)
    fits = max_len >= min(MIN_CONTEXT, model.context_length)
    kv = kv_bytes(model, gpu, max_len) / GIB
    needed = weights + overhead + kv
    # Only a fitting estimate has a meaningful share (a tiny GPU would overflow it).
    utilization = (
        min(cap, math.ceil((needed / total_gib + UTILIZATION_HEADROOM) * 100) / 100)
        if fits
        else cap
    )
    arithmetic = (
        f"{_weights_arithmetic(model, weights)}; overhead {overhead:.2f} GiB; "
        f"{_kv_arithmetic(model, gpu, wanted_kv)}; usable {USABLE_FRACTION:.0%} of "
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
        kv_gib_per_1k_tokens=kv_bytes_per_token(model) / GIB * 1000,
        kv_gib=kv,
        usable_gib=usable,
        max_model_len=max_len,
        gpu_memory_utilization=utilization,
        arithmetic=arithmetic,
    )

"""The VRAM fit check on real models and GPUs, against published figures.

Figures used (each row cites its source):
- Parameter counts and shapes (layers, KV heads, head size) from each model's card and
  `config.json` on Hugging Face: Qwen3-4B 4.02B, 36 layers, 8 KV heads, head 128;
  Qwen3-8B 8.19B, 36/8/128; Qwen3-14B 14.8B, 40/8/128; Llama-3.1-8B 8.03B, 32/8/128.
- Checkpoint sizes on Hugging Face: Qwen/Qwen3-4B (bf16) about 8.0 GB, Qwen/Qwen3-8B (bf16)
  about 16.4 GB; 4-bit AWQ checkpoints of 8B models (Qwen/Qwen3-8B-AWQ) about 5.7-6.0 GB;
  FP8 Llama-3.1-8B-Instruct exports (RedHatAI/neuralmagic, embeddings and lm_head in 16 bit)
  about 9.1 GB.
- GPU memory from NVIDIA's specifications: RTX 3060 12 GB, RTX 4090 24 GB, RTX 3090 24 GB
  (23.5 GiB usable as nvidia-smi reports it).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.config import ConfigError, GpuClass, LocalModel, parse_platform_config
from components.inference.fit import GIB, MIN_CONTEXT, USABLE_FRACTION, estimate, kv_bytes
from components.inference.placement import Pod, pack, pods_of, replicas_placed
from tests.support import stack_values

REVISION = "0" * 40


def _model(**fields: Any) -> LocalModel:
    return LocalModel.model_validate(
        {"hf_repo": "org/model", "revision": REVISION, "gpu_class": "g", **fields}
    )


def _gpu(gib: float, slices: int = 1) -> GpuClass:
    sharing: dict[str, Any] = (
        {"sharing": "time-slicing", "time_slicing_replicas": slices} if slices > 1 else {}
    )
    return GpuClass.model_validate({"memory_gib": gib, "hourly_cost_usd": 0.1, **sharing})


QWEN3_4B = {"parameters_billion": 4.02, "layers": 36, "kv_heads": 8, "head_dim": 128}
QWEN3_8B = {"parameters_billion": 8.19, "layers": 36, "kv_heads": 8, "head_dim": 128}
QWEN3_14B = {"parameters_billion": 14.8, "layers": 40, "kv_heads": 8, "head_dim": 128}
LLAMA31_8B = {"parameters_billion": 8.03, "layers": 32, "kv_heads": 8, "head_dim": 128}
RTX_3060 = _gpu(12)
RTX_4090 = _gpu(23.5)


def test_qwen3_4b_bf16_fits_a_3060_with_a_shorter_context() -> None:
    fit = estimate(
        _model(**QWEN3_4B, weight_format="bf16", context_length=32768, max_concurrent_sequences=2),
        RTX_3060,
    )
    # Published checkpoint: about 8.0 GB of bf16 weights.
    assert fit.weights_bytes / 1e9 == pytest.approx(8.04, rel=0.02)
    assert fit.fits
    assert MIN_CONTEXT <= fit.max_model_len < 32768
    assert fit.max_model_len % 256 == 0
    assert "shortened" in fit.arithmetic


def test_an_8b_fp16_model_does_not_fit_12_gb() -> None:
    fit = estimate(_model(**QWEN3_8B, weight_format="fp16"), RTX_3060)
    # Published checkpoint: about 16.4 GB, more than the card holds before any KV cache.
    assert fit.weights_bytes / 1e9 == pytest.approx(16.4, rel=0.02)
    assert not fit.fits


def test_a_4bit_8b_model_fits_12_gb() -> None:
    fit = estimate(
        _model(
            **QWEN3_8B, weight_format="awq-int4", context_length=8192, max_concurrent_sequences=2
        ),
        RTX_3060,
    )
    # Published AWQ checkpoints of 8B models: about 5.7-6.0 GB.
    assert 5.3 <= fit.weights_bytes / 1e9 <= 6.3
    assert fit.fits and fit.max_model_len == 8192


def test_kv_cache_per_token_matches_the_model_shape() -> None:
    fit = estimate(_model(**QWEN3_14B, weight_format="awq-int4"), RTX_4090)
    # 2 x 40 layers x 8 KV heads x 128 x 2 bytes = 160 KiB per token.
    assert fit.kv_gib_per_1k_tokens * GIB / 1000 == 2 * 40 * 8 * 128 * 2
    fp8 = estimate(_model(**QWEN3_14B, weight_format="awq-int4", kv_cache_dtype="fp8"), RTX_4090)
    assert fp8.kv_gib_per_1k_tokens == pytest.approx(fit.kv_gib_per_1k_tokens / 2)


# Gemma 3 12B (catalog row): 48 layers, every sixth attends the whole context, the others a
# 1024-token window; 8 KV heads of 256, so 2 x 8 x 256 x 2 B = 8 KiB per token and layer.
GEMMA3_12B = {
    "parameters_billion": 12.19,
    "layers": 48,
    "kv_heads": 8,
    "head_dim": 256,
    "sliding_window": 1024,
    "full_attention_layers": 8,
}
GEMMA_LAYER_TOKEN = 2 * 8 * 256 * 2


def _gemma(**fields: Any) -> LocalModel:
    return _model(**{**GEMMA3_12B, "context_length": 8192, "max_concurrent_sequences": 4, **fields})


def test_sliding_window_layers_hold_only_the_window_and_the_batch() -> None:
    fit = estimate(_gemma(), _gpu(48))
    # By hand: 8 full layers x 8192 tokens x 4 sequences, plus 40 windowed layers holding
    # at most 4 x (1024 + 2 blocks of 16) tokens and one 2048-token batch (vLLM's default
    # below 70 GiB), which is less than the 4 x 8192 tokens of the whole context.
    held = 8 * 8192 * 4 + 40 * (4 * (1024 + 32) + 2048)
    assert held == 513_024
    assert fit.kv_gib * GIB == pytest.approx(held * GEMMA_LAYER_TOKEN)
    assert fit.max_model_len == 8192
    # Counting every layer at the whole context would ask for three times as much.
    assert fit.kv_gib * GIB < 48 * 8192 * 4 * GEMMA_LAYER_TOKEN / 3
    assert "8 full-attention layers x 8192 tokens x 4 sequences + 40 sliding-window" in (
        fit.arithmetic
    )
    assert "6272 tokens: window 1024, 2048 batched tokens" in fit.arithmetic


def test_the_batch_that_fills_a_window_follows_vllms_default_and_the_extra_args() -> None:
    large = estimate(_gemma(), _gpu(80))  # vLLM batches 8192 tokens from 70 GiB up
    held = 8 * 8192 * 4 + 40 * (4 * (1024 + 32) + 8192)
    assert large.kv_gib * GIB == pytest.approx(held * GEMMA_LAYER_TOKEN)
    given = estimate(_gemma(extra_args=["--max-num-batched-tokens=4096"]), _gpu(48))
    held = 8 * 8192 * 4 + 40 * (4 * (1024 + 32) + 4096)
    assert given.kv_gib * GIB == pytest.approx(held * GEMMA_LAYER_TOKEN)


def test_without_chunked_prefill_a_whole_prompt_is_one_batch() -> None:
    # vLLM then schedules a prompt in one step: the batch is the whole context.
    fit = estimate(_gemma(chunked_prefill=False), _gpu(48))
    held = 8 * 8192 * 4 + 40 * (4 * (1024 + 32) + 8192)
    assert fit.kv_gib * GIB == pytest.approx(held * GEMMA_LAYER_TOKEN)
    one = estimate(_gemma(chunked_prefill=False, max_concurrent_sequences=1), _gpu(48))
    assert one.kv_gib * GIB == pytest.approx(48 * 8192 * GEMMA_LAYER_TOKEN)


def test_with_the_window_disabled_every_layer_keeps_the_context() -> None:
    fit = estimate(_gemma(extra_args=["--disable-sliding-window"]), _gpu(48))
    assert fit.kv_gib * GIB == pytest.approx(48 * 8192 * 4 * GEMMA_LAYER_TOKEN)


def test_vllm_pads_the_windowed_layers_to_its_kv_groups() -> None:
    # Gemma 3 27B: 10 full layers and 52 windowed ones; vLLM groups layers by tens, so the
    # windowed layers take 60 slots. 16 KV heads of 128: 8 KiB per token and layer.
    model = _model(
        parameters_billion=27.43,
        layers=62,
        kv_heads=16,
        head_dim=128,
        sliding_window=1024,
        full_attention_layers=10,
        context_length=4096,
        max_concurrent_sequences=2,
        weight_format="awq-int4",
    )
    fit = estimate(model, _gpu(48))
    held = 10 * 4096 * 2 + 60 * (2 * (1024 + 32) + 2048)
    assert fit.kv_gib * GIB == pytest.approx(held * 2 * 16 * 128 * 2)
    assert "60 sliding-window layers (52 padded to vLLM's KV groups of 10)" in fit.arithmetic


def test_gpt_oss_windows_every_other_layer_and_sizes_mxfp4_experts() -> None:
    # gpt-oss-20b (catalog row): 12 full and 12 windowed layers (window 128), 8 KV heads of
    # 64: 2 KiB per token and layer; 19.11B expert weights at 4.25 bits, 1.80B in bf16.
    model = _model(
        parameters_billion=20.91,
        expert_parameters_billion=19.11,
        weight_format="mxfp4",
        layers=24,
        kv_heads=8,
        head_dim=64,
        sliding_window=128,
        full_attention_layers=12,
        context_length=32768,
        max_concurrent_sequences=2,
    )
    fit = estimate(model, RTX_4090)
    held = 12 * 32768 * 2 + 12 * (2 * (128 + 32) + 2048)
    assert fit.kv_gib * GIB == pytest.approx(held * 2 * 8 * 64 * 2)
    assert fit.weights_bytes == pytest.approx((19.11 * 4.25 / 8 + 1.80 * 2) * 1e9)
    assert "weights 19.11B x 0.53 B (mxfp4 experts) + 1.80B x 2.0 B (bf16)" in fit.arithmetic


@given(
    context=st.integers(min_value=512, max_value=131072),
    sequences=st.integers(min_value=1, max_value=32),
    memory=st.floats(min_value=8, max_value=96),
    window=st.integers(min_value=64, max_value=8192),
    full=st.integers(min_value=0, max_value=48),
)
def test_a_shortened_windowed_model_gets_the_longest_context_that_fits(
    context: int, sequences: int, memory: float, window: int, full: int
) -> None:
    model = _gemma(
        weight_format="awq-int4",
        context_length=context,
        max_concurrent_sequences=sequences,
        sliding_window=window,
        full_attention_layers=full,
    )
    fit = estimate(model, _gpu(memory))
    budget = fit.usable_gib - fit.weights_gib - fit.overhead_gib
    if fit.fits:
        assert fit.kv_gib <= budget + 1e-9
    if fit.max_model_len < context:
        assert fit.max_model_len % 256 == 0
        longer = min(fit.max_model_len + 256, context)
        assert kv_bytes(model, _gpu(memory), longer) / GIB > budget


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"weight_format": "mxfp4"}, "expert_parameters_billion", "required with weight_format"),
        ({"expert_parameters_billion": 9.0}, "expert_parameters_billion", "less than"),
        ({"sliding_window": 1024}, "full_attention_layers", "set sliding_window and"),
        ({"full_attention_layers": 8}, "sliding_window", "set sliding_window and"),
        ({"sliding_window": 1024, "full_attention_layers": 49}, "full_attention_layers", "more"),
    ],
)
def test_model_shape_fields_are_checked_together(
    fields: dict[str, Any], path: str, fragment: str
) -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"] = {
        "hf_repo": "org/model",
        "revision": REVISION,
        "gpu_class": "rtx-3060",
        **{**GEMMA3_12B, "parameters_billion": 4.0, "sliding_window": None},
        "full_attention_layers": None,
        "layers": 48,
        **fields,
    }
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    lines = [line for line in raised.value.lines if f"qwen3-4b.{path}:" in line]
    assert lines and fragment in lines[0], raised.value.lines


def test_a_window_needs_the_shape_it_bounds() -> None:
    with pytest.raises(ValueError, match="needs layers, kv_heads and head_dim"):
        _model(parameters_billion=4.0, sliding_window=1024, full_attention_layers=4)


def test_tensor_parallelism_pools_the_memory_of_its_gpus() -> None:
    one = estimate(_model(**QWEN3_14B, weight_format="bf16", gpu_count=1), RTX_4090)
    two = estimate(_model(**QWEN3_14B, weight_format="bf16", gpu_count=2), RTX_4090)
    assert not one.fits  # 29.6 GB of bf16 weights
    assert two.fits


def test_utilization_is_derived_from_the_estimate_and_never_above_the_cap() -> None:
    small = estimate(_model(**QWEN3_4B, weight_format="awq-int4", context_length=4096), _gpu(23.5))
    assert small.gpu_memory_utilization < 0.5
    needed = (small.weights_gib + small.overhead_gib + small.kv_gib) / 23.5
    assert needed < small.gpu_memory_utilization <= needed + 0.05
    big = estimate(_model(**QWEN3_4B, weight_format="bf16", context_length=32768), RTX_3060)
    assert big.gpu_memory_utilization == USABLE_FRACTION


@given(
    params=st.floats(min_value=0.5, max_value=70),
    context=st.integers(min_value=512, max_value=131072),
    sequences=st.integers(min_value=1, max_value=64),
    memory=st.floats(min_value=4, max_value=96),
    fmt=st.sampled_from(["bf16", "fp16", "fp8", "awq-int4", "gptq-int4"]),
)
def test_a_fitting_estimate_stays_within_usable_memory(
    params: float, context: int, sequences: int, memory: float, fmt: str
) -> None:
    fit = estimate(
        _model(
            parameters_billion=params,
            weight_format=fmt,
            context_length=context,
            max_concurrent_sequences=sequences,
        ),
        _gpu(memory),
    )
    if fit.fits:
        assert fit.weights_gib + fit.overhead_gib + fit.kv_gib <= fit.usable_gib + 1e-9
        assert fit.max_model_len <= context


def test_a_model_that_does_not_fit_is_a_config_error_showing_the_arithmetic() -> None:
    values = stack_values("dev")
    model = values["inference"]["models"]["qwen3-4b"]
    model["hf_repo"] = "Qwen/Qwen3-8B"
    model["parameters_billion"] = 8.19
    model["weight_format"] = "fp16"
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    (line,) = [line for line in raised.value.lines if "does not fit" in line]
    assert line.startswith("config error: inference.models.qwen3-4b: does not fit GPU class")
    assert "8.19B x 2.0 B (fp16) = 15.26 GiB" in line
    assert "usable 92% of 1 x 12.0 GiB = 11.04 GiB" in line


def test_an_fp8_8b_model_fits_12_gb_only_with_a_shorter_context() -> None:
    fit = estimate(
        _model(**LLAMA31_8B, weight_format="fp8", context_length=8192, max_concurrent_sequences=2),
        RTX_3060,
    )
    # Published FP8 exports of Llama-3.1-8B-Instruct: about 9.1 GB.
    assert fit.weights_bytes / 1e9 == pytest.approx(9.1, rel=0.04)
    # 128 KiB per token (2 x 32 x 8 x 128 x 2 B); about 1.3 GiB left for it.
    assert fit.fits and MIN_CONTEXT <= fit.max_model_len < 8192


def test_time_slicing_divides_the_memory_not_just_the_compute() -> None:
    bf16_8b = _model(**QWEN3_8B, weight_format="bf16", context_length=4096)
    assert estimate(bf16_8b, RTX_4090).fits
    shared = estimate(bf16_8b, _gpu(23.5, slices=2))
    assert not shared.fits  # 15.26 GiB of weights > 46% of 23.5 GiB
    assert "x 1/2 (time-sliced)" in shared.arithmetic
    small = estimate(
        _model(**QWEN3_4B, weight_format="awq-int4", context_length=4096), _gpu(23.5, 2)
    )
    assert small.fits
    # Two instances on one GPU must together stay within it (vLLM's per-instance fraction).
    assert 2 * small.gpu_memory_utilization <= USABLE_FRACTION


@given(
    nodes=st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]), st.integers(min_value=1, max_value=8), min_size=1
    ),
    models=st.dictionaries(
        st.sampled_from(["m1", "m2", "m3"]),
        st.tuples(st.integers(min_value=1, max_value=8), st.integers(min_value=1, max_value=4)),
        min_size=1,
    ),
)
def test_packing_never_overcommits_a_node(
    nodes: dict[str, int], models: dict[str, tuple[int, int]]
) -> None:
    placed, unplaced = pack(nodes, pods_of(models))
    used = dict.fromkeys(nodes, 0)
    for pod, node in placed.items():
        used[node] += pod.gpus
    assert all(used[n] <= nodes[n] for n in nodes)
    assert len(placed) + len(unplaced) == sum(r for _, r in models.values())
    # Nothing left out that a node still has room for.
    assert all(pod.gpus > nodes[n] - used[n] for pod in unplaced for n in nodes)
    counts = replicas_placed(nodes, models)
    assert sum(counts.values()) == len(placed)


def test_packing_counts_gpus_per_node_not_per_class() -> None:
    pods = pods_of({"tp2": (2, 3)})
    placed, unplaced = pack({"x": 3, "y": 3}, pods)
    assert len(placed) == 2 and unplaced == [Pod(gpus=2, model="tp2", replica=2)]


def _prod_with_two_3090_nodes(**node_counts: int) -> dict[str, Any]:
    values = stack_values("prod")
    nodes = values["cluster"]["nodes"]
    del nodes["gpu-3090"]
    for index, (name, count) in enumerate(sorted(node_counts.items())):
        nodes[name] = {
            "address": f"192.168.10.{40 + index}",
            "gpu": {"gpu_class": "rtx-3090", "count": count},
        }
    return values


def test_models_per_gpu_node_never_exceed_its_gpus() -> None:
    # qwen3-14b asks for 2 GPUs on one node; two 1-GPU nodes add up to 2 but cannot host it
    # (caught by the existing largest-node rule); 3 + 1 GPUs with a second 2-GPU model
    # add up to 4 but only one 2-GPU pod fits a node: the per-node rule.
    values = _prod_with_two_3090_nodes(**{"gpu-3090-a": 3, "gpu-3090-b": 1})
    values["inference"]["models"]["qwen3-14b"].pop("autoscaling")
    values["inference"]["models"]["qwen3-14b-b"] = dict(values["inference"]["models"]["qwen3-14b"])
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    (line,) = raised.value.lines
    assert line.startswith("config error: inference.models: the GPUs of class 'rtx-3090' add up")
    assert "qwen3-14b-b" in line
    values = _prod_with_two_3090_nodes(**{"gpu-3090-a": 2, "gpu-3090-b": 2})
    values["inference"]["models"]["qwen3-14b-b"] = dict(values["inference"]["models"]["qwen3-14b"])
    parse_platform_config(values)  # one 2-GPU pod per node: fits


def test_tensor_parallelism_is_refused_on_a_time_sliced_class() -> None:
    values = stack_values("prod")
    values["cluster"]["gpu_classes"]["rtx-3090"]["sharing"] = "time-slicing"
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    assert any(
        line.startswith("config error: inference.models.qwen3-14b.gpu_count: GPU class")
        and "time-sliced" in line
        for line in raised.value.lines
    )


def test_replicas_on_node_local_caches_share_one_node() -> None:
    values = stack_values("dev")
    values["cluster"]["nodes"]["rack-2"] = {
        "address": "192.168.1.11",
        "gpu": {"gpu_class": "rtx-3060", "count": 1},
    }
    values["inference"]["models"]["qwen3-4b"]["replicas"] = 2
    # Two GPUs of the class, but on two nodes, and a ReadWriteOnce cache lives on one.
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    (line,) = raised.value.lines
    assert line.startswith("config error: inference.models: the GPUs of class 'rtx-3060'")
    assert "ReadWriteOnce caches" in line
    values["inference"]["cache_access_mode"] = "ReadWriteMany"
    parse_platform_config(values)
    # Both replicas on one 2-GPU node can share a node-local cache.
    values = stack_values("dev")
    values["cluster"]["nodes"]["rack-1"]["gpu"]["count"] = 2
    values["inference"]["models"]["qwen3-4b"]["replicas"] = 2
    parse_platform_config(values)


def test_same_node_packing_keeps_a_models_replicas_together() -> None:
    pods = pods_of({"m": (1, 2)})
    placed, unplaced = pack({"a": 1, "b": 1}, pods, same_node=True)
    assert len(placed) == 1 and len(unplaced) == 1
    # The first replica goes where both fit, not to the first node with room for one.
    placed, unplaced = pack({"a": 1, "b": 2}, pods, same_node=True)
    assert not unplaced and set(placed.values()) == {"b"}

"""The VRAM fit check on real models and GPUs, against published figures.

Figures used (each row cites its source):
- Parameter counts and shapes (layers, KV heads, head size) from each model's card and
  `config.json` on Hugging Face: Qwen3-4B 4.02B, 36 layers, 8 KV heads, head 128;
  Qwen3-8B 8.19B, 36/8/128; Qwen3-14B 14.8B, 40/8/128; Llama-3.1-8B 8.03B, 32/8/128.
- Checkpoint sizes on Hugging Face: Qwen/Qwen3-4B (bf16) about 8.0 GB, Qwen/Qwen3-8B (bf16)
  about 16.4 GB; 4-bit AWQ checkpoints of 8B models about 5.7-6.0 GB.
- GPU memory from NVIDIA's specifications: RTX 3060 12 GB, RTX 4090 24 GB, RTX 3090 24 GB.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.config import ConfigError, GpuClass, LocalModel, parse_platform_config
from components.inference.fit import GIB, MIN_CONTEXT, USABLE_FRACTION, estimate
from tests.support import stack_values

REVISION = "0" * 40


def _model(**fields: Any) -> LocalModel:
    return LocalModel.model_validate(
        {"hf_repo": "org/model", "revision": REVISION, "gpu_class": "g", **fields}
    )


def _gpu(gib: float) -> GpuClass:
    return GpuClass.model_validate({"memory_gib": gib, "hourly_cost_usd": 0.1})


QWEN3_4B = {"parameters_billion": 4.02, "layers": 36, "kv_heads": 8, "head_dim": 128}
QWEN3_8B = {"parameters_billion": 8.19, "layers": 36, "kv_heads": 8, "head_dim": 128}
QWEN3_14B = {"parameters_billion": 14.8, "layers": 40, "kv_heads": 8, "head_dim": 128}
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
    assert "8.19B x 2.0 B (fp16)" in line and "usable 92% of 1 x 12.0 GiB" in line

"""The `vllm serve` arguments of a model server, derived from config and the fit estimate.

Flag names are those of vLLM's engine and frontend argument parsers (`vllm/engine/
arg_utils.py`, `vllm/entrypoints/openai/cli_args.py`) in the pinned image.
"""

from __future__ import annotations

from components.config.inference import LocalModel
from components.inference.endpoints import VLLM_PORT
from components.inference.fit import Fit

MODEL_CACHE_PATH = "/models"
"""Where the model cache volume is mounted; weights download there once."""

DTYPE = {
    "bf16": "bfloat16",
    "fp16": "float16",
    "fp8": "auto",
    # AWQ and GPTQ kernels compute in half precision.
    "awq-int4": "float16",
    "gptq-int4": "float16",
}
QUANTIZATION = {
    "fp8": "fp8",
    # The Marlin kernels run AWQ/GPTQ checkpoints faster on Ampere and newer.
    "awq-int4": "awq_marlin",
    "gptq-int4": "gptq_marlin",
}


def vllm_args(name: str, model: LocalModel, fit: Fit) -> list[str]:
    """Arguments after `vllm serve` (the image's entrypoint); the model is positional."""
    args = [
        model.hf_repo,
        f"--revision={model.revision}",
        f"--served-model-name={name}",
        "--host=0.0.0.0",
        f"--port={VLLM_PORT}",
        f"--download-dir={MODEL_CACHE_PATH}",
        f"--dtype={DTYPE[model.weight_format]}",
        f"--max-model-len={fit.max_model_len}",
        f"--gpu-memory-utilization={fit.gpu_memory_utilization:.2f}",
        f"--tensor-parallel-size={model.gpu_count}",
        f"--max-num-seqs={model.max_concurrent_sequences}",
        f"--kv-cache-dtype={model.kv_cache_dtype}",
        "--enable-prefix-caching" if model.prefix_caching else "--no-enable-prefix-caching",
        "--enable-chunked-prefill" if model.chunked_prefill else "--no-enable-chunked-prefill",
    ]
    if model.weight_format in QUANTIZATION:
        args.append(f"--quantization={QUANTIZATION[model.weight_format]}")
    return args

"""The `vllm serve` arguments of a model server, derived from config and the fit estimate.

Flag names are those of vLLM's engine and frontend argument parsers
(`vllm/engine/arg_utils.py` `EngineArgs.add_cli_args`, `vllm/entrypoints/openai/
cli_args.py` `make_arg_parser`, read at vllm-project/vllm@99d7eb5 and @789340f, the newest
snapshots available; the pinned image is v0.33.0, whose source could not be read here).
Boolean engine options are `argparse.BooleanOptionalAction`s there, so each has a
`--no-` form; the model is the positional `model_tag` of `vllm serve` (the image's
entrypoint), which takes precedence over `--model`.

`--quantization` is deliberately not passed: `weight_format` names the format the
checkpoint is stored in, vLLM reads the method from the checkpoint's
`quantization_config` and upgrades AWQ/GPTQ to the Marlin kernels itself where the GPU
supports them, and an explicit method that differs from the checkpoint's (for example
`awq` on a `compressed-tensors` AWQ export) stops the server with "Quantization method
specified in the model config ... does not match".
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
    # The checkpoint's scales decide; vLLM picks the activation dtype.
    "fp8": "auto",
    # vLLM's --dtype help: "half ... Recommended for AWQ quantization"; GPTQ alike.
    "awq-int4": "float16",
    "gptq-int4": "float16",
    # gpt-oss computes in bf16 beside its MXFP4 experts (vLLM reads the method itself).
    "mxfp4": "bfloat16",
}


def vllm_args(name: str, model: LocalModel, fit: Fit) -> list[str]:
    """Arguments after `vllm serve` (the image's entrypoint); the model is positional.

    The model's `extra_args` come last; `vllm_flags` has refused any that repeat these.
    """
    return [
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
        *model.extra_args,
    ]

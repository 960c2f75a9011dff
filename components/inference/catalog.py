"""Known model architectures: what a model entry can name as its `preset`.

Each row holds the facts the fit check needs, read from the model's published
`config.json` (the addresses are in `tests/fixtures/catalog_sources.yaml`, and
`tests/unit/test_catalog.py` holds every row to them):

* `parameters_billion`: derived from the config's shapes (embeddings, attention and
  MLP or expert weights of every layer); for MoE models every expert counts, since all
  of them sit in GPU memory;
* `layers`, `kv_heads`, `head_dim`: `num_hidden_layers`, `num_key_value_heads` and
  `head_dim` (`hidden_size / num_attention_heads` where the config leaves it out);
* `native_context`: `max_position_embeddings`, the longest `--max-model-len` vLLM
  accepts for the model without RoPE scaling;
* `sliding_window`, `full_attention_layers`: `sliding_window`, and how many layers attend
  the whole context (`full_attention` in `layer_types`, else one in
  `sliding_window_pattern`), where the window is shorter than the native context
  (Gemma 3, gpt-oss); the fit bounds the other layers' KV cache by the window;
* `weight_format`: the format of the published checkpoint (bf16, or mxfp4 for gpt-oss,
  whose `expert_parameters_billion` are the MoE expert weights it stores in 4 bits); a
  quantized export of the same model keeps the architecture and overrides `hf_repo` and
  `weight_format`;
* `gated`: the repository asks for the Hugging Face token.

Gemma 3 rows count the SigLIP vision tower too (vLLM loads it with the language model).
Ministral 8B's config.json gives one `sliding_window` equal to its 32768-token
`max_position_embeddings`, so within what vLLM serves every layer keeps the whole
context and the row has no window.

A model entry naming a preset may still set any field; what it sets wins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Preset:
    """One known architecture and where its published weights live."""

    hf_repo: str
    parameters_billion: float
    layers: int
    kv_heads: int
    head_dim: int
    native_context: int
    weight_format: str = "bf16"
    gated: bool = False
    sliding_window: int | None = None
    full_attention_layers: int | None = None
    expert_parameters_billion: float | None = None

    def fields(self) -> dict[str, Any]:
        """The model-entry fields this preset fills in (every field of the preset)."""
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "qwen3-4b": Preset(
        hf_repo="Qwen/Qwen3-4B",
        parameters_billion=4.02,
        layers=36,
        kv_heads=8,
        head_dim=128,
        native_context=40960,
    ),
    "qwen3-8b": Preset(
        hf_repo="Qwen/Qwen3-8B",
        parameters_billion=8.19,
        layers=36,
        kv_heads=8,
        head_dim=128,
        native_context=40960,
    ),
    "qwen3-30b-a3b": Preset(
        hf_repo="Qwen/Qwen3-30B-A3B",
        parameters_billion=30.53,
        layers=48,
        kv_heads=4,
        head_dim=128,
        native_context=40960,
    ),
    "llama-3.1-8b-instruct": Preset(
        hf_repo="meta-llama/Llama-3.1-8B-Instruct",
        parameters_billion=8.03,
        layers=32,
        kv_heads=8,
        head_dim=128,
        native_context=131072,
        gated=True,
    ),
    "llama-3.2-3b-instruct": Preset(
        hf_repo="meta-llama/Llama-3.2-3B-Instruct",
        parameters_billion=3.21,
        layers=28,
        kv_heads=8,
        head_dim=128,
        native_context=131072,
        gated=True,
    ),
    "mistral-7b-instruct-v0.3": Preset(
        hf_repo="mistralai/Mistral-7B-Instruct-v0.3",
        parameters_billion=7.25,
        layers=32,
        kv_heads=8,
        head_dim=128,
        native_context=32768,
    ),
    "ministral-8b-instruct-2410": Preset(
        hf_repo="mistralai/Ministral-8B-Instruct-2410",
        parameters_billion=8.02,
        layers=36,
        kv_heads=8,
        head_dim=128,
        native_context=32768,
        gated=True,
    ),
    "gemma-3-4b-it": Preset(
        hf_repo="google/gemma-3-4b-it",
        parameters_billion=4.30,
        layers=34,
        kv_heads=4,
        head_dim=256,
        native_context=131072,
        sliding_window=1024,
        full_attention_layers=5,
        gated=True,
    ),
    "gemma-3-12b-it": Preset(
        hf_repo="google/gemma-3-12b-it",
        parameters_billion=12.19,
        layers=48,
        kv_heads=8,
        head_dim=256,
        native_context=131072,
        sliding_window=1024,
        full_attention_layers=8,
        gated=True,
    ),
    "gemma-3-27b-it": Preset(
        hf_repo="google/gemma-3-27b-it",
        parameters_billion=27.43,
        layers=62,
        kv_heads=16,
        head_dim=128,
        native_context=131072,
        sliding_window=1024,
        full_attention_layers=10,
        gated=True,
    ),
    "gpt-oss-20b": Preset(
        hf_repo="openai/gpt-oss-20b",
        parameters_billion=20.91,
        expert_parameters_billion=19.11,
        weight_format="mxfp4",
        layers=24,
        kv_heads=8,
        head_dim=64,
        native_context=131072,
        sliding_window=128,
        full_attention_layers=12,
    ),
    "gpt-oss-120b": Preset(
        hf_repo="openai/gpt-oss-120b",
        parameters_billion=116.83,
        expert_parameters_billion=114.66,
        weight_format="mxfp4",
        layers=36,
        kv_heads=8,
        head_dim=64,
        native_context=131072,
        sliding_window=128,
        full_attention_layers=18,
    ),
    "phi-4": Preset(
        hf_repo="microsoft/phi-4",
        parameters_billion=14.66,
        layers=40,
        kv_heads=10,
        head_dim=128,
        native_context=16384,
    ),
    "deepseek-r1-distill-qwen-7b": Preset(
        hf_repo="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        parameters_billion=7.62,
        layers=28,
        kv_heads=4,
        head_dim=128,
        native_context=131072,
    ),
    "deepseek-r1-distill-qwen-14b": Preset(
        hf_repo="deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        parameters_billion=14.77,
        layers=48,
        kv_heads=8,
        head_dim=128,
        native_context=131072,
    ),
    "deepseek-r1-distill-qwen-32b": Preset(
        hf_repo="deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        parameters_billion=32.76,
        layers=64,
        kv_heads=8,
        head_dim=128,
        native_context=131072,
    ),
}

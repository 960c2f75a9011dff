"""The model catalog, row by row, against the config.json fields it was read from.

`tests/fixtures/catalog_sources.yaml` records, for every preset, the fields of the
model's published config.json (with the addresses they were read at). From them this
test derives what the fit check needs, the way transformers and vLLM read a config:
the head size (`head_dim`, else `hidden_size / num_attention_heads`), the native
context (`max_position_embeddings`), the layers that attend the whole context (the
`full_attention` entries of `layer_types`, else every `sliding_window_pattern`-th layer)
and the parameter count (embeddings, once when tied, plus every layer's attention and MLP
or expert weights, plus the vision tower a multimodal checkpoint loads); norms and biases
of the language model are under 0.1% and left out, hence the 1% tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, GpuClass, LocalModel, parse_platform_config
from components.inference.catalog import PRESETS
from components.inference.fit import MIN_CONTEXT, estimate
from tests.support import stack_values

SOURCES: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "fixtures" / "catalog_sources.yaml").read_text()
)
SHA = "0" * 40


def _experts(config: dict[str, Any]) -> int:
    return int(config.get("num_experts", config.get("num_local_experts", 0)))


def _expert_parameters(config: dict[str, Any]) -> float:
    """Weights of every expert of every layer (gate, up and down projections), billions."""
    size = config[
        "moe_intermediate_size" if "moe_intermediate_size" in config else "intermediate_size"
    ]
    per_layer = _experts(config) * 3 * config["hidden_size"] * size
    return config["num_hidden_layers"] * per_layer / 1e9


def _vision_parameters(vision: dict[str, Any], text_hidden: int) -> float:
    """A SigLIP vision tower (attention, MLP and norms with biases, patch and position
    embeddings) and the projection of its output into the language model, billions."""
    hidden, mlp = vision["hidden_size"], vision["intermediate_size"]
    layer = 4 * (hidden * hidden + hidden) + 2 * hidden * mlp + mlp + hidden + 4 * hidden
    patches = (vision["image_size"] // vision["patch_size"]) ** 2
    embeddings = 3 * vision["patch_size"] ** 2 * hidden + hidden + patches * hidden
    tower = vision["num_hidden_layers"] * layer + embeddings + 2 * hidden
    return (tower + hidden * text_hidden) / 1e9


def _derived_parameters(config: dict[str, Any], vision: dict[str, Any] | None = None) -> float:
    hidden = config["hidden_size"]
    head = config.get("head_dim", hidden // config["num_attention_heads"])
    attention = 2 * hidden * head * (config["num_attention_heads"] + config["num_key_value_heads"])
    if _experts(config):
        mlp = hidden * _experts(config)  # the router
    else:
        mlp = 3 * hidden * config["intermediate_size"]
    embeddings = config["vocab_size"] * hidden * (1 if config["tie_word_embeddings"] else 2)
    total = (config["num_hidden_layers"] * (attention + mlp) + embeddings) / 1e9
    total += _expert_parameters(config) if _experts(config) else 0.0
    return total + (_vision_parameters(vision, hidden) if vision else 0.0)


def _full_attention_layers(config: dict[str, Any]) -> int:
    if "layer_types" in config:
        assert len(config["layer_types"]) == config["num_hidden_layers"]
        return int(config["layer_types"].count("full_attention"))
    return int(config["num_hidden_layers"] // config["sliding_window_pattern"])


def test_every_preset_has_a_recorded_source_and_every_source_a_preset() -> None:
    assert set(PRESETS) == set(SOURCES)
    assert all(SOURCES[name]["sources"] for name in SOURCES)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_catalog_row_matches_its_published_config(name: str) -> None:
    preset, config = PRESETS[name], SOURCES[name]["config"]
    assert preset.layers == config["num_hidden_layers"]
    assert preset.kv_heads == config["num_key_value_heads"]
    assert preset.head_dim == config.get(
        "head_dim", config["hidden_size"] // config["num_attention_heads"]
    )
    assert preset.native_context == config["max_position_embeddings"]
    assert preset.parameters_billion == pytest.approx(
        _derived_parameters(config, SOURCES[name].get("vision_config")), rel=0.01
    )
    window = config.get("sliding_window")
    if window is not None and window < config["max_position_embeddings"]:
        assert preset.sliding_window == window
        assert preset.full_attention_layers == _full_attention_layers(config)
    else:  # no window, or one that bounds nothing vLLM serves
        assert preset.sliding_window is None and preset.full_attention_layers is None
    if preset.weight_format == "mxfp4":
        assert preset.expert_parameters_billion == pytest.approx(
            _expert_parameters(config), rel=0.001
        )
    else:
        assert preset.expert_parameters_billion is None


def test_the_layer_rules_reproduce_the_published_layouts() -> None:
    # Gemma 3 27B: "52 local and 10 global layers" (every sixth attends the whole context);
    # gpt-oss-20b: sliding window on every other layer.
    assert _full_attention_layers(SOURCES["gemma-3-27b-it"]["config"]) == 10
    assert _full_attention_layers(SOURCES["gpt-oss-20b"]["config"]) == 12
    assert _full_attention_layers(SOURCES["gemma-3-4b-it"]["config"]) == 5


@pytest.mark.parametrize("name", ["gpt-oss-20b", "gpt-oss-120b"])
def test_gpt_oss_counts_and_weights_match_its_model_card(name: str) -> None:
    preset, published = PRESETS[name], SOURCES[name]["published"]
    config = SOURCES[name]["config"]
    assert preset.parameters_billion == published["parameters_billion"]
    assert _derived_parameters(config) == pytest.approx(published["parameters_billion"], rel=0.005)
    model = LocalModel.model_validate(
        {"preset": name, "revision": SHA, "gpu_class": "g", "context_length": 4096}
    )
    fit = estimate(model, GpuClass.model_validate({"memory_gib": 80, "hourly_cost_usd": 1}))
    # The model card's checkpoint size, GiB: the MXFP4 experts and the bf16 rest.
    assert fit.weights_gib == pytest.approx(published["checkpoint_gib"], abs=0.05)
    if "checkpoint_shard_gb" in published:
        assert fit.weights_bytes / 1e9 == pytest.approx(
            sum(published["checkpoint_shard_gb"]), rel=0.005
        )


def test_gpt_oss_20b_runs_within_16_gib_as_its_card_says() -> None:
    model = LocalModel.model_validate(
        {
            "preset": "gpt-oss-20b",
            "revision": SHA,
            "gpu_class": "g",
            "context_length": 8192,
            "max_concurrent_sequences": 1,
        }
    )
    fit = estimate(model, GpuClass.model_validate({"memory_gib": 16, "hourly_cost_usd": 0.1}))
    assert fit.fits and fit.max_model_len >= MIN_CONTEXT


def test_the_gemma_language_model_matches_its_text_only_checkpoint() -> None:
    config, published = SOURCES["gemma-3-12b-it"]["config"], SOURCES["gemma-3-12b-it"]["published"]
    # bf16: 2 bytes per parameter of the language model alone.
    assert 2 * _derived_parameters(config) == pytest.approx(
        sum(published["text_checkpoint_shard_gb"]), rel=0.005
    )


def test_the_derivation_reproduces_published_counts() -> None:
    # Qwen3-8B's model card: 8.2B parameters, 6.95B of them non-embedding.
    config = SOURCES["qwen3-8b"]["config"]
    assert _derived_parameters(config) == pytest.approx(8.2, abs=0.01)
    embeddings = 2 * config["vocab_size"] * config["hidden_size"] / 1e9
    assert _derived_parameters(config) - embeddings == pytest.approx(6.95, abs=0.01)
    # Ministral 8B's model card: 8,019,808,256 parameters (norms included).
    ministral = _derived_parameters(SOURCES["ministral-8b-instruct-2410"]["config"])
    assert ministral * 1e9 == pytest.approx(8_019_808_256, rel=0.0001)


def test_a_preset_fills_the_architecture_and_anything_set_wins() -> None:
    model = LocalModel.model_validate({"preset": "qwen3-8b", "revision": SHA, "gpu_class": "g"})
    assert (model.hf_repo, model.layers, model.kv_heads, model.head_dim) == (
        "Qwen/Qwen3-8B",
        36,
        8,
        128,
    )
    quantized = LocalModel.model_validate(
        {
            "preset": "qwen3-8b",
            "revision": SHA,
            "gpu_class": "g",
            "hf_repo": "Qwen/Qwen3-8B-AWQ",
            "weight_format": "awq-int4",
        }
    )
    assert quantized.hf_repo == "Qwen/Qwen3-8B-AWQ" and quantized.weight_format == "awq-int4"
    assert quantized.layers == 36


def _errors(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    return list(raised.value.lines)


def test_an_unknown_preset_names_the_known_ones() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["preset"] = "qwen-3-4b"
    (line,) = _errors(values)
    assert line.startswith("config error: inference.models.qwen3-4b.preset: not in the catalog")
    assert "qwen3-4b, qwen3-8b" in line and line.endswith("(got 'qwen-3-4b')")


def test_a_branch_as_revision_says_where_to_find_the_commit() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["revision"] = "main"
    (line,) = _errors(values)
    assert line.startswith("config error: inference.models.qwen3-4b.revision:")
    assert "https://huggingface.co/Qwen/Qwen3-4B/commits/main" in line
    assert "git ls-remote https://huggingface.co/Qwen/Qwen3-4B main" in line


def test_context_beyond_the_native_one_is_refused() -> None:
    values = stack_values("dev")
    model = values["inference"]["models"]["qwen3-4b"]
    model.update(preset="qwen3-4b", context_length=65536)
    (line,) = _errors(values)
    assert line.startswith("config error: inference.models.qwen3-4b.context_length:")
    assert "40960" in line

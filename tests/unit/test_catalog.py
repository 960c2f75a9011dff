"""The model catalog, row by row, against the config.json fields it was read from.

`tests/fixtures/catalog_sources.yaml` records, for every preset, the fields of the
model's published config.json (with the addresses they were read at). From them this
test derives what the fit check needs, the way transformers and vLLM read a config:
the head size (`head_dim`, else `hidden_size / num_attention_heads`), the native
context (`max_position_embeddings`) and the parameter count (embeddings, once when
tied, plus every layer's attention and MLP or expert weights); norms and biases are
under 0.1% and left out, hence the 1% tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, LocalModel, parse_platform_config
from components.inference.catalog import PRESETS
from tests.support import stack_values

SOURCES: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "fixtures" / "catalog_sources.yaml").read_text()
)
SHA = "0" * 40


def _derived_parameters(config: dict[str, Any]) -> float:
    hidden = config["hidden_size"]
    head = config.get("head_dim", hidden // config["num_attention_heads"])
    attention = 2 * hidden * head * (config["num_attention_heads"] + config["num_key_value_heads"])
    if "num_experts" in config:
        experts = config["num_experts"]
        mlp = experts * 3 * hidden * config["moe_intermediate_size"] + hidden * experts
    else:
        mlp = 3 * hidden * config["intermediate_size"]
    embeddings = config["vocab_size"] * hidden * (1 if config["tie_word_embeddings"] else 2)
    return (config["num_hidden_layers"] * (attention + mlp) + embeddings) / 1e9


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
    assert preset.parameters_billion == pytest.approx(_derived_parameters(config), rel=0.01)


def test_the_derivation_reproduces_a_published_count() -> None:
    # Qwen3-8B's model card: 8.2B parameters, 6.95B of them non-embedding.
    config = SOURCES["qwen3-8b"]["config"]
    assert _derived_parameters(config) == pytest.approx(8.2, abs=0.01)
    embeddings = 2 * config["vocab_size"] * config["hidden_size"] / 1e9
    assert _derived_parameters(config) - embeddings == pytest.approx(6.95, abs=0.01)


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

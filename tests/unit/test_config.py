"""Config: the committed stacks validate; bad configs fail with one line per bad field."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import ConfigError, PlatformConfig, parse_platform_config
from tests.support import ROOT, STACKS, stack_values

LINE = re.compile(r"^config error: [^:\s][^:]*: .+ \(got .*\)$")
INVALID = Path(__file__).resolve().parent.parent / "fixtures" / "invalid"


def errors_of(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(values)
    return list(caught.value.lines)


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stack_files_validate(stack: str) -> None:
    config = parse_platform_config(stack_values(stack))
    assert config.environment == stack


def test_prod_differs_from_dev_where_it_must() -> None:
    dev, prod = (parse_platform_config(stack_values(s)) for s in STACKS)
    assert prod.llm_gateway.replicas >= 2 > dev.llm_gateway.replicas
    assert prod.cluster.schedulable_general_nodes() >= 3
    assert prod.data.enabled and not dev.data.enabled


def _cases() -> list[Path]:
    return sorted(INVALID.glob("*.yaml"))


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.stem)
def test_invalid_fixture_is_rejected_naming_the_field(case: Path) -> None:
    """Each fixture patches the dev stack and lists the exact paths that must be reported."""
    spec = yaml.safe_load(case.read_text())
    values = stack_values(spec.get("base", "dev"))
    for dotted, value in spec["set"].items():
        _set_path(values, dotted, value)
    lines = errors_of(values)
    for line in lines:
        assert LINE.match(line), line
    reported = {line.split(": ", 2)[1] for line in lines}
    assert reported == set(spec["expect_paths"]), lines
    for fragment in spec.get("expect_text", []):
        assert any(fragment in line for line in lines), (fragment, lines)


def test_fixture_folder_covers_the_required_kinds_of_mistake() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in _cases()}
    assert {
        "wrong-type",
        "unknown-key",
        "out-of-range",
        "dangling-reference",
        "cross-field",
        "environment",
    } <= kinds


def _set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    """Set (or with `__delete__` remove) `dotted`; a number indexes a list."""
    parts = dotted.split(".")
    node: Any = values
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value == "__delete__":
        node.pop(last)
    else:
        node[last] = value


def test_several_problems_are_all_reported_at_once() -> None:
    values = stack_values("dev")
    values["edge"]["max_body_mib"] = 0
    values["edge"]["instance_typo"] = "t4g.small"
    values["clients"]["dev-laptop"]["burst"] = -1
    lines = errors_of(values)
    paths = {line.split(": ", 2)[1] for line in lines}
    assert paths == {"edge.max_body_mib", "edge.instance_typo", "clients.dev-laptop.burst"}


def test_error_lines_show_the_value_found() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["gpu_class"] = "rtx-9999"
    (line,) = errors_of(values)
    assert "inference.models.qwen3-4b.gpu_class" in line
    assert "(got 'rtx-9999')" in line
    assert "rtx-3060" in line  # says what is allowed


# Hypothesis: corrupt one leaf of a valid stack with a value of the wrong shape; the
# result is either still valid or rejected with field-level lines, never a crash.


def _leaf_paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict):
        paths: list[tuple[str, ...]] = []
        for key, value in node.items():
            paths += _leaf_paths(value, (*prefix, str(key)))
        return paths
    return [prefix]


BASE = {stack: stack_values(stack) for stack in STACKS}
LEAVES = {stack: _leaf_paths(values) for stack, values in BASE.items()}
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), stack=st.sampled_from(STACKS), junk=JUNK)
def test_corrupted_configs_fail_cleanly(data: st.DataObject, stack: str, junk: Any) -> None:
    values = copy.deepcopy(BASE[stack])
    path = data.draw(st.sampled_from(LEAVES[stack]))
    node = values
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = junk
    try:
        result = parse_platform_config(values)
    except ConfigError as error:
        assert error.lines
        for line in error.lines:
            assert LINE.match(line), line
    else:
        assert isinstance(result, PlatformConfig)


@settings(max_examples=150, deadline=None)
@given(stack=st.sampled_from(STACKS), key=st.from_regex(r"[a-z][a-z_]{2,12}", fullmatch=True))
def test_unknown_keys_anywhere_are_named(stack: str, key: str) -> None:
    values = copy.deepcopy(BASE[stack])
    target = values["llm_gateway"]
    if key in target:
        return
    target[key] = 1
    lines = errors_of(values)
    assert f"config error: llm_gateway.{key}: unknown key" in "\n".join(lines)


def test_every_config_key_says_what_it_means() -> None:
    from tools.config_docs import undescribed_fields

    assert undescribed_fields() == [], "give these fields a `description=` in components/config/"


def test_an_undescribed_key_is_found_however_deep_it_sits() -> None:
    from pydantic import BaseModel, Field

    from tools.config_docs import undescribed_fields

    class Leaf(BaseModel):
        described: int = Field(default=0, description="Has one.")
        bare: int = 0
        blank: int = Field(default=0, description="  ")

    class Root(BaseModel):
        leaves: dict[str, tuple[Leaf, ...]] = Field(default_factory=dict, description="Some.")
        maybe: Leaf | None = None

    assert undescribed_fields(Root) == ["maybe", "leaves.<name>.bare", "leaves.<name>.blank"]


def test_config_reference_is_generated_from_the_models() -> None:
    from tools.config_docs import json_schema, reference_markdown

    assert (ROOT / "docs" / "config-reference.md").read_text() == reference_markdown(), (
        "run `make config-docs`"
    )
    assert (ROOT / "docs" / "config.schema.json").read_text() == json_schema()


def test_mcp_is_a_client_route_only_where_a_stack_lists_it() -> None:
    """The edge's default routes are the model API; `/mcp/` is passed where a stack opts in
    (prod does, for its MCP servers), and dev, without MCP servers, does not."""
    from components.config import EdgeConfig

    defaults = EdgeConfig.model_fields["api_routes"].default
    assert "mcp" not in defaults
    dev, prod = (parse_platform_config(stack_values(s)) for s in STACKS)
    assert dev.edge is not None and "mcp" not in dev.edge.api_routes
    assert not dev.llm_gateway.mcp_servers
    assert prod.edge is not None and "mcp" in prod.edge.api_routes
    assert prod.llm_gateway.mcp_servers

"""A user's own stack file and its usual mistakes: secrets pasted in plain config are refused
(offline render and `__main__` alike) and never echoed by any error, duplicate keys are
refused with their lines, keys without the project's namespace count, `aws:region` is not
silently ignored, and messages say what was meant."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, parse_platform_config
from tests.support import (
    ROOT,
    load_stack_lines,
    secret_placeholder,
    stack_config,
    stack_values,
)
from tools.mock_engine import PROJECT, config_for_engine
from tools.render import main as render_main

SECRETS = {
    "openai": "sk-proj-Q9wErTy7UiOp3AsDfGh5JkLzXcVbNm1Q2w3E4r5T6y7U8i9O0p",
    "anthropic": "sk-ant-api03-Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd8Ss7Aa6Qq5Ww4Ee3Rr",
    "huggingface": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "pem": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "-----END OPENSSH PRIVATE KEY-----\n",
    "opaque": "Zk3Q8vN1wL5tY7uB2xC9mR4pS6hJ0gF3dA8eK1",
}


def _fragments(secret: str) -> list[str]:
    """Pieces of a secret no error may contain (a truncated echo leaks too)."""
    body = secret.replace("-----BEGIN OPENSSH PRIVATE KEY-----", "").strip()
    return [body[i : i + 12] for i in range(0, max(1, len(body) - 12), 6)]


def _leaks(text: str, secret: str) -> list[str]:
    return [piece for piece in _fragments(secret) if piece in text]


def _write_stack(tmp_path: Path, stack: str, mutate: dict[str, Any], text: str = "") -> Path:
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    document["config"].update(mutate)
    path = tmp_path / "Pulumi.mine.yaml"
    path.write_text(text or yaml.safe_dump(document))
    return path


def _render(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    out = tmp_path / "out"
    code = render_main(["--stack", "mine", "--config", str(path), "--out", str(out), "--no-charts"])
    return code, capsys.readouterr().err


# --- secrets pasted in plain config ------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "key", "secret"),
    [
        ("dev", "anthropic_api_key", SECRETS["anthropic"]),  # a cloud model's api_key_secret
        ("dev", "kubeconfig", "apiVersion: v1\nusers:\n- user:\n    token: " + SECRETS["opaque"]),
        ("prod", "ssh_private_key", SECRETS["pem"]),
        ("prod", "huggingface_token", SECRETS["huggingface"]),
        ("prod", "openai_api_key", SECRETS["openai"]),
        ("prod", "github_mcp_authorization", "Bearer " + SECRETS["opaque"]),  # an MCP header
        ("prod", "github_app_private_key", SECRETS["pem"]),  # the runners' GitHub App
    ],
)
def test_a_secret_in_plain_config_is_refused_by_the_render_without_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack: str, key: str, secret: str
) -> None:
    path = _write_stack(tmp_path, stack, {f"{PROJECT}:{key}": secret})
    code, err = _render(path, tmp_path, capsys)
    assert code == 2, err
    assert f"`pulumi config set --secret {key} <value>`" in err
    assert err.startswith(f"config error: {key}: holds a secret in plain config")
    assert _leaks(err, secret) == [], err
    assert not (tmp_path / "out").exists()


def test_an_edge_client_key_given_in_plain_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = stack_values("prod")
    client = sorted(values["clients"])[0]
    edge = copy.deepcopy(values["edge"])
    edge["client_key_secrets"] = {client: f"edge_key_{client}"}
    path = _write_stack(
        tmp_path,
        "prod",
        {f"{PROJECT}:edge": edge, f"{PROJECT}:edge_key_{client}": SECRETS["opaque"]},
    )
    code, err = _render(path, tmp_path, capsys)
    assert code == 2 and f"config error: edge_key_{client}: holds a secret" in err, err
    assert _leaks(err, SECRETS["opaque"]) == []


def _load_with(stack: str, plain: dict[str, str], secret_keys: list[str]) -> list[str]:
    """`load_stack` as `__main__` runs it, on the engine's config: the stack's values,
    `plain` set as plain config, every other required secret set as a secret."""
    engine = config_for_engine(stack_values(stack))
    for key in stack_config(stack).required_secrets():
        engine[f"{PROJECT}:{key}"] = secret_placeholder(key)
    for key, value in plain.items():
        engine[f"{PROJECT}:{key}"] = value
    return load_stack_lines(stack, engine, secret_keys)


def test_through_main_a_plain_secret_is_refused_not_used() -> None:
    """`Config.get_secret` takes a plain value as it is; the loader refuses it instead."""
    stack = "dev"
    required = stack_config(stack).required_secrets()
    others = [f"{PROJECT}:{k}" for k in required if k != "anthropic_api_key"]
    lines = _load_with(stack, {"anthropic_api_key": SECRETS["anthropic"]}, others)
    assert any(
        line.startswith("config error: anthropic_api_key: holds a secret in plain config")
        for line in lines
    ), lines
    assert _leaks("\n".join(lines), SECRETS["anthropic"]) == []
    # The same key stored as a secret loads.
    assert _load_with(stack, {}, [f"{PROJECT}:{k}" for k in required]) == []


# --- no error echoes a secret --------------------------------------------------------------


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaf_paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _leaf_paths(inner, (*path, index))
    else:
        yield path


def _set(values: dict[str, Any], path: tuple[Any, ...], new: Any) -> None:
    target: Any = values
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("kind", ["anthropic", "pem", "opaque", "aws"])
def test_no_error_shows_a_secret_pasted_into_any_field(stack: str, kind: str) -> None:
    """Every field of the stack, one at a time, and a few unknown keys, given a value that
    looks like a secret: whatever the error (type, pattern, range, unknown key,
    cross-field rule), the value is not in it."""
    secret = SECRETS[kind]
    base = stack_values(stack)
    paths = list(_leaf_paths(base))
    assert len(paths) > 30
    refused = 0
    for path in [*paths, ("llm_gateway", "extra_secret"), ("my_token",), ("edge", "colour")]:
        values = copy.deepcopy(base)
        if len(path) == 1 or path[-1] in ("extra_secret", "colour"):
            target = values if len(path) == 1 else values[path[0]]
            target[path[-1]] = secret
        else:
            _set(values, path, secret)
        try:
            parse_platform_config(values)
        except ConfigError as error:
            refused += 1
            text = "\n".join(error.lines)
            assert _leaks(text, secret) == [], (path, text)
    assert refused > len(paths) // 2, "most fields must refuse such a value"


def test_a_yaml_error_does_not_quote_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        f"config:\n  llm-platform:environment: dev\n  "
        f'llm-platform:anthropic_api_key: "{SECRETS["anthropic"]}\n'
    )
    path = _write_stack(tmp_path, "dev", {}, text)
    code, err = _render(path, tmp_path, capsys)
    assert code == 2 and re.search(r"line \d+, column \d+", err), err
    assert _leaks(err, SECRETS["anthropic"]) == [], err


# --- stack file mistakes -------------------------------------------------------------------


def test_a_key_given_twice_is_refused_with_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = (ROOT / "Pulumi.dev.yaml").read_text()
    lines = original.splitlines()
    model_line = next(i for i, line in enumerate(lines) if re.match(r"\s+qwen3-4b:\s*$", line))
    indent = len(lines[model_line]) - len(lines[model_line].lstrip())
    block = [lines[model_line]]
    for line in lines[model_line + 1 :]:
        if len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    doubled = lines[: model_line + len(block)] + block + lines[model_line + len(block) :]
    path = _write_stack(tmp_path, "dev", {}, "\n".join(doubled) + "\n")
    code, err = _render(path, tmp_path, capsys)
    assert code == 2, err
    first, second = model_line + 1, model_line + len(block) + 1
    assert f"key 'qwen3-4b' is given twice in one mapping (lines {first} and {second})" in err


def test_keys_without_the_project_namespace_are_the_projects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    prefix = f"{PROJECT}:"
    document["config"] = {
        (k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in document["config"].items()
    }
    path = tmp_path / "Pulumi.bare.yaml"
    path.write_text(yaml.safe_dump(document))
    code, err = _render(path, tmp_path, capsys)
    assert code == 0, err
    plan = (tmp_path / "out" / "plan.json").read_text()
    clients = list(stack_values("dev")["clients"])
    assert clients and all(name in plan for name in clients)


def test_aws_region_elsewhere_than_the_programs_region_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region = stack_config("prod").aws.region
    same = _write_stack(tmp_path, "prod", {"aws:region": region})
    assert _render(same, tmp_path, capsys)[0] == 0
    other = _write_stack(tmp_path, "prod", {"aws:region": "us-east-2"})
    code, err = _render(other, tmp_path, capsys)
    assert code == 2
    assert err.startswith("config error: aws:region: ignored by this program")
    assert f"`llm-platform:aws.region` ('{region}')" in err


def test_messages_say_what_was_meant() -> None:
    values = stack_values("prod")
    values["edge"]["wireguard"]["home_lan_cidr"] = "192.168.50.1/24"
    gpu_node = next(n for n in values["cluster"]["nodes"].values() if n.get("gpu"))
    gpu_node["arch"] = "arm64"
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(values)
    text = "\n".join(caught.value.lines)
    assert "did you mean '192.168.50.0/24'?" in text
    assert "(got 'arm64')" in text and "<Arch" not in text


# --- a stack of one's own ------------------------------------------------------------------


def test_a_stack_of_ones_own_names_its_aws_resources_after_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy of prod under its own name (same tier, same account): every AWS name carries
    the stack's name, none the tier's, so it can live beside prod."""
    path = tmp_path / "Pulumi.home.yaml"
    path.write_text((ROOT / "Pulumi.prod.yaml").read_text())
    out = tmp_path / "home"
    assert render_main(["--config", str(path), "--out", str(out), "--no-charts"]) == 0
    aws_text = "\n".join(p.read_text() for p in sorted((out / "aws").rglob("*.json")))
    assert "llm-platform-home-pg-backups-" in aws_text
    assert "llm-platform-home-qdrant-snapshots-" in aws_text
    assert "/llm-platform/home/edge" in aws_text
    assert "llm-platform-prod" not in aws_text and "/llm-platform/prod/" not in aws_text
    assert '"environment": "prod"' in (out / "outputs.json").read_text()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("staging-eu1", "64 characters long (S3 allows 63): in region eu-west-1 a stack name "
         "may have 10 characters"),
        ("Home", "use lower-case letters, digits and '-'"),
    ],
)  # fmt: skip
def test_a_stack_name_that_cannot_name_its_buckets_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text((ROOT / "Pulumi.prod.yaml").read_text())
    code = render_main(["--config", str(path), "--out", str(tmp_path / "out"), "--no-charts"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"config error: stack {name!r}: " in err and message in err
    assert not (tmp_path / "out").exists()

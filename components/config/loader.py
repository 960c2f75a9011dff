"""Reading the stack config: raw values → validated `PlatformConfig`, secrets → secret Outputs.

`parse_platform_config` is pure (a mapping in, a model or `ConfigError` out) so tests and
tools validate stack files without the Pulumi engine. `load_stack` reads the running
stack's config once, at the entry point; components never read config themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pydantic import ValidationError

from ._base import ConfigError, format_validation_error, problem_line
from .platform import PlatformConfig

PROJECT = "llm-platform"


def parse_platform_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the project's config values (top-level key → value); raise `ConfigError`."""
    try:
        return PlatformConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


@dataclass(frozen=True)
class StackSecrets:
    """The stack's secret config values, each a secret `Output[str]` (never a plain str)."""

    kubeconfig: pulumi.Output[str] | None = None
    ssh_private_key: pulumi.Output[str] | None = None
    huggingface_token: pulumi.Output[str] | None = None
    by_key: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)

    def require(self, key: str) -> pulumi.Output[str]:
        """The secret stored under a config key that `required_secrets` listed."""
        return self.by_key[key]


def _raw_project_config(config: pulumi.Config) -> dict[str, Any]:
    """Every `llm-platform:*` value, objects decoded from JSON, secrets left out."""
    raw: dict[str, Any] = {}
    for field_name in PlatformConfig.model_fields:
        value = config.get(field_name)
        if value is None:
            continue
        try:
            raw[field_name] = json.loads(value)
        except json.JSONDecodeError:
            raw[field_name] = value
    return raw


def _unknown_keys(secret_keys: frozenset[str]) -> list[str]:
    """Project config keys that are neither a model field nor a known secret."""
    prefix = f"{PROJECT}:"
    known = set(PlatformConfig.model_fields) | secret_keys
    # The engine passes config in PULUMI_CONFIG; the mock engine sets it in-process.
    runtime_config = pulumi.runtime.config
    all_keys = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}.keys()
    return sorted(
        key[len(prefix) :]
        for key in all_keys
        if key.startswith(prefix) and key[len(prefix) :] not in known
    )


KNOWN_SECRET_KEYS = frozenset({"kubeconfig", "ssh_private_key", "huggingface_token"})


def load_stack(config: pulumi.Config | None = None) -> tuple[PlatformConfig, StackSecrets]:
    """Read and validate the running stack's config and secrets, or raise `ConfigError`."""
    config = config or pulumi.Config(PROJECT)
    platform = parse_platform_config(_raw_project_config(config))

    required = platform.required_secrets()
    lines = [
        problem_line((key,), "unknown key; check the spelling against the config reference", key)
        for key in _unknown_keys(KNOWN_SECRET_KEYS | set(required))
    ]
    secrets: dict[str, pulumi.Output[str]] = {}
    for key in required:
        value = config.get_secret(key)
        if value is None:
            lines.append(
                problem_line(
                    (key,),
                    f"secret is not set; run `pulumi config set --secret {key} <value>`",
                    None,
                )
            )
        else:
            secrets[key] = value
    if lines:
        raise ConfigError(lines)
    return platform, StackSecrets(
        kubeconfig=secrets.get("kubeconfig"),
        ssh_private_key=secrets.get("ssh_private_key"),
        huggingface_token=secrets.get("huggingface_token"),
        by_key=secrets,
    )

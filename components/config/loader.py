"""Reading the stack config: raw values → validated `PlatformConfig`, secrets → secret Outputs.

`parse_platform_config` is pure (a mapping in, a model or `ConfigError` out) so tests and
tools validate stack files without the Pulumi engine. `load_stack` reads the running
stack's config once, at the entry point; components never read config themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pydantic import ValidationError

from components.naming import stack_name_problem

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


def _is_secret_config(full_key: str) -> bool:
    """Whether the engine handed this key as a secret (`pulumi config set --secret`)."""
    runtime_config = pulumi.runtime.config
    return (
        runtime_config.is_config_secret(full_key)
        or full_key in runtime_config.get_config_secret_keys_env()
    )


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


def secret_keys_named_by(raw: Mapping[str, Any]) -> frozenset[str]:
    """Every config key that holds a secret for these (not yet validated) values: the fixed
    ones, each cloud model's `api_key_secret`, each MCP server's `secret_headers`, the
    runners' GitHub App key and each `edge.client_key_secrets` entry.
    Read leniently: a malformed section names nothing here and fails validation later."""
    keys = set(KNOWN_SECRET_KEYS)
    gateway = raw.get("llm_gateway")
    clouds = gateway.get("cloud_models") if isinstance(gateway, Mapping) else None
    for cloud in (clouds or {}).values() if isinstance(clouds, Mapping) else ():
        if isinstance(cloud, Mapping) and isinstance(cloud.get("api_key_secret"), str):
            keys.add(cloud["api_key_secret"])
    servers = gateway.get("mcp_servers") if isinstance(gateway, Mapping) else None
    for server in servers.values() if isinstance(servers, Mapping) else ():
        headers = server.get("secret_headers") if isinstance(server, Mapping) else None
        if isinstance(headers, Mapping):
            keys.update(v for v in headers.values() if isinstance(v, str))
    runners = raw.get("runners")
    app = runners.get("github_app") if isinstance(runners, Mapping) else None
    if isinstance(app, Mapping):
        keys.add(str(app.get("private_key_secret", "github_app_private_key")))
    edge = raw.get("edge")
    clients = edge.get("client_key_secrets") if isinstance(edge, Mapping) else None
    if isinstance(clients, Mapping):
        keys.update(v for v in clients.values() if isinstance(v, str))
    return frozenset(keys)


def provider_region_lines(aws_region: Any, platform: PlatformConfig) -> list[str]:
    """`aws:region` set to another region than `aws.region`: the program's AWS provider is
    explicit and takes only `llm-platform:aws.region`, so the stack-level key would be
    silently ignored."""
    if aws_region is None or aws_region == platform.aws.region:
        return []
    return [
        f"config error: aws:region: ignored by this program, whose AWS resources use "
        f"`llm-platform:aws.region` ({platform.aws.region!r}); set the region there and remove "
        f"`aws:region` (got {aws_region!r})"
    ]


def stack_name_lines(platform: PlatformConfig) -> list[str]:
    """The stack's name cannot name its AWS resources (S3's rules), when it has any."""
    if not (platform.edge_enabled or platform.has_s3_writers):
        return []
    problem = stack_name_problem(platform.stack_name, platform.aws.region)
    return [] if problem is None else [f"config error: stack {platform.stack_name!r}: {problem}"]


def plain_secret_lines(plain_keys: Iterable[str]) -> list[str]:
    """One error per secret found as plain config (its value is never shown)."""
    return [
        f"config error: {key}: holds a secret in plain config; store it with "
        f"`pulumi config set --secret {key} <value>` and remove the plain value "
        "(value not shown)"
        for key in sorted(plain_keys)
    ]


def load_stack(config: pulumi.Config | None = None) -> tuple[PlatformConfig, StackSecrets]:
    """Read and validate the running stack's config and secrets, or raise `ConfigError`."""
    config = config or pulumi.Config(PROJECT)
    raw = _raw_project_config(config)
    # `Config.get_secret` would take a plain value as it is: a secret pasted in plain text
    # (in the stack file, so in git) is refused, not used.
    plain = [
        key
        for key in secret_keys_named_by(raw)
        if pulumi.runtime.config.get_config(f"{PROJECT}:{key}") is not None
        and not _is_secret_config(f"{PROJECT}:{key}")
    ]
    try:
        platform = parse_platform_config(raw)
    except ConfigError as error:
        raise ConfigError([*plain_secret_lines(plain), *error.lines]) from None

    platform = platform.for_stack(pulumi.get_stack())
    required = platform.required_secrets()
    lines = plain_secret_lines(plain) + stack_name_lines(platform)
    lines += provider_region_lines(pulumi.Config("aws").get("region"), platform)
    lines += [
        problem_line((key,), "unknown key; check the spelling against the config reference", key)
        for key in _unknown_keys(KNOWN_SECRET_KEYS | set(required))
    ]
    secrets: dict[str, pulumi.Output[str]] = {}
    for key in required:
        if key in plain:
            continue
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

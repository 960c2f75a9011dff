"""Config of the LLM gateway (LiteLLM), its cloud models, database and named clients."""

from __future__ import annotations

from pydantic import Field, model_validator

from ._base import DnsLabel, FrozenModel, Problem, SecretConfigKey, raise_if_problems
from .mcp import McpServerConfig, McpServerName, header_env
from .names import ServedName

LITELLM_DEFAULT_ALLOWED_FAILS = 3
"""`litellm.allowed_fails` at 1.83.14 (`litellm/__init__.py`). The router counts failures
against `allowed_fails` only when it differs from this value
(`litellm/router_utils/cooldown_handlers.py` `_is_allowed_fails_set_on_router`)."""


class CloudModel(FrozenModel):
    """A model served by a cloud provider through LiteLLM."""

    provider_model: str = Field(
        pattern=r"^[a-z_]+/[\w.:@-]+$",
        description="LiteLLM model string, e.g. `anthropic/claude-haiku-4-5`.",
    )
    api_key_secret: SecretConfigKey = Field(
        description="Secret config key holding the provider's API key "
        "(`pulumi config set --secret <key> ...`)."
    )
    api_key_env: str = Field(
        default="ANTHROPIC_API_KEY",
        pattern=r"^[A-Z][A-Z0-9_]{1,63}$",
        description="Environment variable LiteLLM reads the key from.",
    )
    context_window: int = Field(
        default=200_000,
        ge=1024,
        le=10_000_000,
        description="Longest prompt the model takes: the gateway's `max_input_tokens`, and "
        "whether it can take over a local model's over-long prompts.",
    )


class RouterConfig(FrozenModel):
    """Failover behaviour of the gateway. Local models' first-token deadlines are per model
    (`inference.models.<name>.first_token_deadline_seconds`)."""

    num_retries: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Retries of a failed call within a model group before its fallback (a "
        "timed-out call is never retried).",
    )
    request_timeout_seconds: float = Field(
        default=600,
        gt=0,
        le=3600,
        description="Total time a request may take; caps every other timeout.",
    )
    stream_timeout_seconds: float = Field(
        default=60,
        gt=0,
        le=600,
        description="Cloud models: time allowed to the first streamed token and between two "
        "stream events (sized for long generations).",
    )
    allowed_fails: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Failures of a deployment tolerated within `cooldown_seconds`; one more "
        "takes it out of rotation for `cooldown_seconds`.",
    )
    cooldown_seconds: int = Field(
        default=10,
        ge=1,
        le=3600,
        description="How long a failing deployment stays out of rotation; a health check "
        "that still fails keeps it out after that.",
    )
    health_check_interval_seconds: int = Field(
        default=10,
        ge=5,
        le=3600,
        description="Background health checks of the local models; a failed check takes the "
        "model out of rotation until a check passes.",
    )

    @model_validator(mode="after")
    def _timeouts(self) -> RouterConfig:
        problems: list[Problem] = []
        if self.request_timeout_seconds < self.stream_timeout_seconds:
            problems.append(
                Problem(
                    ("request_timeout_seconds",),
                    f"shorter than stream_timeout_seconds ({self.stream_timeout_seconds}s): "
                    "no request could outlive its own first token",
                    self.request_timeout_seconds,
                )
            )
        if self.allowed_fails == LITELLM_DEFAULT_ALLOWED_FAILS:
            problems.append(
                Problem(
                    ("allowed_fails",),
                    f"{LITELLM_DEFAULT_ALLOWED_FAILS} is LiteLLM's own default, which it reads "
                    "as unset and replaces with its failure-rate rule (a deployment is cooled "
                    "down only after 5 requests in a minute): choose another count",
                    self.allowed_fails,
                )
            )
        raise_if_problems(problems)
        return self


class PostgresConfig(FrozenModel):
    """CloudNativePG cluster holding LiteLLM's keys, budgets and spend."""

    instances: int = Field(
        default=1, ge=1, le=9, description="Postgres instances (one primary, the rest replicas)."
    )
    storage_gib: int = Field(default=10, ge=1, le=10_000, description="Volume of each instance.")
    backup_retention_days: int = Field(
        default=14,
        ge=1,
        le=3650,
        description="Days of base backups and WAL kept in S3 (prod), for point-in-time recovery.",
    )
    backup_schedule: str = Field(
        default="0 0 3 * * *", description="Six-field cron (seconds first) of the daily backup."
    )


class LlmGatewayConfig(FrozenModel):
    """LiteLLM proxy: replicas, autoscaling, router, cloud models, database, shared state."""

    replicas: int = Field(
        default=1,
        ge=1,
        le=50,
        description="LiteLLM replicas (prod: at least 2, the floor of its autoscaler).",
    )
    autoscale_max_replicas: int = Field(
        default=6, ge=1, le=100, description="Most replicas the prod autoscaler adds."
    )
    autoscale_cpu_percent: int = Field(
        default=70,
        ge=10,
        le=100,
        description="CPU use (of requests) the prod autoscaler keeps the replicas at.",
    )
    cloud_models: dict[DnsLabel, CloudModel] = Field(
        default_factory=dict,
        description="Cloud models by the name clients call them; also the local models' fallbacks.",
    )
    router: RouterConfig = Field(
        default_factory=RouterConfig, description="Failover: retries, cooldowns, health checks."
    )
    postgres: PostgresConfig = Field(
        default_factory=PostgresConfig, description="The database of keys, budgets and spend."
    )
    redis: bool | None = Field(
        default=None, description="Shared router state; defaults to on when replicas > 1."
    )
    maintenance_budget_usd: float = Field(
        default=5.0,
        ge=0,
        le=100_000,
        description="Per-client budget while a GPU is in maintenance.",
    )
    mcp_servers: dict[McpServerName, McpServerConfig] = Field(
        default_factory=dict,
        description="MCP servers the gateway fronts at `/mcp/` (LiteLLM's MCP gateway), by "
        "name; their tools are offered as `<name>-<tool>`, to the clients that list the server "
        "in `clients.<name>.mcp_servers`. None by default.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LlmGatewayConfig:
        problems: list[Problem] = []
        if self.autoscale_max_replicas < self.replicas:
            problems.append(
                Problem(
                    ("autoscale_max_replicas",),
                    f"must be >= replicas ({self.replicas})",
                    self.autoscale_max_replicas,
                )
            )
        secrets_by_env: dict[str, set[str]] = {}
        for model in self.cloud_models.values():
            secrets_by_env.setdefault(model.api_key_env, set()).add(model.api_key_secret)
        for name, model in sorted(self.cloud_models.items()):
            if len(secrets_by_env[model.api_key_env]) > 1:
                problems.append(
                    Problem(
                        ("cloud_models", name, "api_key_env"),
                        "another cloud model reads a different secret from this variable; "
                        "one variable holds one key: give each secret its own api_key_env",
                        model.api_key_env,
                    )
                )
        by_env: dict[str, list[tuple[str, str]]] = {}
        for server_name, server in sorted(self.mcp_servers.items()):
            for header in server.secret_headers:
                by_env.setdefault(header_env(server_name, header), []).append((server_name, header))
        for env, users in sorted(by_env.items()):
            for server_name, header in users[1:]:
                problems.append(
                    Problem(
                        ("mcp_servers", server_name, "secret_headers", header),
                        f"its variable {env} is also that of {users[0][0]!r}'s header "
                        f"{users[0][1]!r}; rename a server",
                        header,
                    )
                )
        if self.redis is False and self.replicas > 1:
            problems.append(
                Problem(("redis",), "more than one replica needs shared router state", False)
            )
        raise_if_problems(problems)
        return self

    @property
    def uses_redis(self) -> bool:
        """Whether the gateway gets a Redis for shared limits, cooldowns and revocations."""
        return self.redis if self.redis is not None else self.replicas > 1


class ClientConfig(FrozenModel):
    """A named API client: one key at the edge and one LiteLLM virtual key."""

    requests_per_second: float = Field(
        default=5.0,
        gt=0,
        le=10_000,
        description="Sustained rate at the edge, whole per second or per minute (0.5 = 30 a "
        "minute); over it, 429 with Retry-After.",
    )
    burst: int = Field(
        default=10, ge=0, le=100_000, description="Requests above the rate served at once."
    )
    max_budget_usd: float = Field(
        default=50.0,
        ge=0,
        le=1_000_000,
        description="Spend the client's gateway key may reach per `budget_duration` (local "
        "tokens priced from the GPUs' hourly cost).",
    )
    budget_duration: str = Field(
        default="30d",
        pattern=r"^\d{1,4}[smhd]$",
        description="Period after which the budget resets, e.g. `30d`, `12h`.",
    )
    models: tuple[ServedName, ...] = Field(
        default=(), description="Models the client may call; empty means all."
    )
    mcp_servers: tuple[McpServerName, ...] = Field(
        default=(),
        description="MCP servers (`llm_gateway.mcp_servers`) whose tools the client may list "
        "and call through the gateway; empty means none.",
    )

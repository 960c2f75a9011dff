"""What a self-hosted token costs, so budgets bite for local traffic too.

A model server occupies `gpu_count` GPUs of its class for as long as it runs; at its
measured aggregate throughput (`tokens_per_second`, output tokens of one replica under
load) one output token costs the GPUs' hourly cost divided by the tokens they produce in
an hour: hourly cost / (3600 x tokens per second). Prompt tokens are processed in
parallel during prefill, roughly an order of magnitude faster than decoding, so they are
priced at `PREFILL_DISCOUNT` of that. The gateway sets both on the model entries
(`input_cost_per_token`, `output_cost_per_token`), so spend and budgets count them.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config import PlatformConfig

PREFILL_DISCOUNT = 0.1


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenCost:
    """USD per token of a model."""

    input_cost_per_token: float
    output_cost_per_token: float


def local_token_cost(config: PlatformConfig, model_name: str) -> TokenCost:
    """Per-token cost of a local model from its GPU class's hourly cost and its throughput."""
    model = config.inference.models[model_name]
    if model.placement == "lan":
        host = config.cluster.lan_gpu_hosts[model.lan_host or ""]
        gpu_class, gpus = host.gpu_class, host.gpu_count
    else:
        gpu_class, gpus = model.gpu_class or "", model.gpu_count
    hourly = config.cluster.gpu_classes[gpu_class].hourly_cost_usd * gpus
    output = hourly / (3600 * model.tokens_per_second)
    return TokenCost(input_cost_per_token=output * PREFILL_DISCOUNT, output_cost_per_token=output)


def models_in_maintenance(config: PlatformConfig) -> tuple[str, ...]:
    """Local models now served by their cloud fallback because their GPUs are in maintenance."""
    return tuple(
        name for name in sorted(config.inference.models) if config.model_in_maintenance(name)
    )


def client_budget_usd(config: PlatformConfig, client_name: str) -> float:
    """A client's budget: `llm_gateway.maintenance_budget_usd` (when lower) while a model it
    may call is served by the cloud because of GPU maintenance, its own budget otherwise."""
    client = config.clients[client_name]
    affected = set(models_in_maintenance(config))
    reachable = set(client.models) if client.models else set(config.inference.models)
    if affected & reachable:
        return min(client.max_budget_usd, config.llm_gateway.maintenance_budget_usd)
    return client.max_budget_usd

"""Values the program derives instead of taking them from config, each with its cause.

A reviewer who sees a client's budget drop or a model's context shrink in a diff must see
why: the stack file did not say so, the program worked it out. `derived_values` lists every
such value of a stack (pure): the render writes them to `derived.json`, and the render diff
annotates the changes they explain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from components.config import PlatformConfig
from components.inference.deadlines import served_context
from components.inference.model_server import maintenance_nodes, running_replicas
from components.llm_gateway.costs import client_budget_usd, models_in_maintenance


@dataclass(frozen=True)
class Derived:
    """One derived value: what it is, what the program chose, what config said, and why."""

    subject: str
    value: Any
    configured: Any
    cause: str

    def to_json(self) -> dict[str, Any]:
        """The `derived.json` entry."""
        return asdict(self)


def derived_values(config: PlatformConfig) -> list[Derived]:
    """Every value of the stack the program set otherwise than config says, sorted."""
    derived = [*_budgets(config), *_replicas(config), *_contexts(config)]
    return sorted(derived, key=lambda d: d.subject)


def _budgets(config: PlatformConfig) -> list[Derived]:
    affected = models_in_maintenance(config)
    result = []
    for name, client in sorted(config.clients.items()):
        budget = client_budget_usd(config, name)
        if budget != client.max_budget_usd:
            result.append(
                Derived(
                    subject=f"client `{name}`: max budget (USD)",
                    value=budget,
                    configured=client.max_budget_usd,
                    cause=f"GPU maintenance: {', '.join(f'`{m}`' for m in affected)} served by "
                    "the cloud fallback, so budgets are capped at "
                    f"`llm_gateway.maintenance_budget_usd` ({config.llm_gateway.maintenance_budget_usd})",
                )
            )
    return result


def _replicas(config: PlatformConfig) -> list[Derived]:
    result = []
    for name, model in sorted(config.inference.models.items()):
        if model.placement != "cluster" or model.gpu_class is None:
            continue
        running = running_replicas(config, name)
        if running == model.replicas:
            continue
        if config.model_in_maintenance(name):
            cause = f"GPU class `{model.gpu_class}` is in maintenance: the cloud fallback serves it"
        else:
            down = ", ".join(f"`{n}`" for n in maintenance_nodes(config, model.gpu_class))
            cause = f"nodes {down} are in maintenance: only the pods that fit the others run"
        result.append(
            Derived(
                subject=f"model `{name}`: replicas",
                value=running,
                configured=model.replicas,
                cause=cause,
            )
        )
    return result


def _contexts(config: PlatformConfig) -> list[Derived]:
    result = []
    for name, model in sorted(config.inference.models.items()):
        context = served_context(config, name)
        fit = config.model_fit(name)
        if context == model.context_length or fit is None:
            continue
        cause = f"the fit check: {fit.arithmetic}"
        if context < fit.max_model_len:
            cause = (
                "its Ollama service serves every model with the shortest context that fits "
                f"one of them; its own {cause}"
            )
        result.append(
            Derived(
                subject=f"model `{name}`: served context (tokens)",
                value=context,
                configured=model.context_length,
                cause=cause,
            )
        )
    return result

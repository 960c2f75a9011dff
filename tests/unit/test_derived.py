"""Values the program derives, each with its cause (`components.derived`)."""

from __future__ import annotations

from components.config import parse_platform_config
from components.derived import derived_values
from tests.support import stack_config, stack_values


def test_the_committed_stacks_derive_what_their_config_does_not_say() -> None:
    (context,) = derived_values(stack_config("dev"))
    # dev's 8192-token context does not fit a 12 GiB card beside the weights.
    assert context.subject == "model `qwen3-4b`: served context (tokens)"
    assert (context.configured, context.value) == (8192, 7424)
    assert context.cause.startswith("the fit check: weights 4.02B")
    assert context.cause.endswith("context shortened to 7424 tokens to fit")
    assert derived_values(stack_config("prod")) == []


def test_a_shortened_context_on_a_lan_host_is_derived_too() -> None:
    values = stack_values("prod")
    values["inference"]["models"]["Qwen3-4B"]["context_length"] = 40960
    config = parse_platform_config(values)
    fit = config.model_fit("Qwen3-4B")
    assert fit is not None and fit.max_model_len < 40960
    derived = {d.subject: d for d in derived_values(config)}
    # Both models share the host, so the longer context shortens both.
    assert set(derived) == {
        f"model `{name}`: served context (tokens)" for name in ("Qwen3-4B", "llama-3-1-8b")
    }
    context = derived["model `Qwen3-4B`: served context (tokens)"]
    assert (context.configured, context.value) == (40960, fit.max_model_len)
    assert context.cause == f"the fit check: {fit.arithmetic}"


def test_maintenance_caps_budgets_and_scales_models_to_zero_saying_why() -> None:
    values = stack_values("prod")
    values["cluster"]["gpu_classes"]["rtx-3090"]["maintenance"] = True
    values["llm_gateway"]["maintenance_budget_usd"] = 50
    derived = {d.subject: d for d in derived_values(parse_platform_config(values))}
    replicas = derived["model `qwen3-14b`: replicas"]
    assert (replicas.configured, replicas.value) == (1, 0)
    assert "`rtx-3090` is in maintenance" in replicas.cause
    # Both clients may call qwen3-14b: both budgets are capped at 50.
    for client, configured in (("web-app", 500), ("batch-jobs", 200)):
        budget = derived[f"client `{client}`: max budget (USD)"]
        assert (budget.configured, budget.value) == (configured, 50)
        assert "`qwen3-14b` served by the cloud fallback" in budget.cause
    assert "model `qwen3-8b`: replicas" not in derived

"""How long the gateway waits on a local model server, derived from its fit and throughput.

Four figures per local model, all rendered into its LiteLLM deployment (the last three
enforced on the connection to the server by `components/llm_gateway/upstream_deadlines.py`):

- `served_context`: the context the server is started with (vLLM's `--max-model-len`,
  which the fit check may shorten below `context_length`, on cluster GPUs and on LAN
  hosts alike; an Ollama service's one `OLLAMA_CONTEXT_LENGTH`, the shortest fit of its
  models), what the gateway advertises as `max_input_tokens`.
- `first_token_deadline`: how long a request, streaming or not, waits for the server's
  first token before the cloud fallback is tried. Derived as the expected worst first
  token (`first_token_seconds`) plus a prefill of the whole served context at
  `PREFILL_SPEEDUP` x the measured output throughput, rounded up to half a second;
  `first_token_deadline_seconds` overrides it.
- `stream_idle_deadline`: the longest pause allowed between two events of an answer once
  its first token is in. A healthy server pauses a sequence when it preempts it (its
  KV cache is recomputed: a prefill of up to the served context, as the first token
  was) behind another request's prefill, so the derived figure is `IDLE_FACTOR` x the
  first-token deadline; `stream_idle_timeout_seconds` overrides it.
- `total_deadline`: the whole request: the first-token deadline plus the generation of a
  whole served context at one sequence's share of the throughput, capped by
  `llm_gateway.router.request_timeout_seconds`. It caps the other two.
"""

from __future__ import annotations

import math

from components.config import PlatformConfig

PREFILL_SPEEDUP = 8.0
"""Prefill processes prompt tokens this many times faster than the model's aggregate
output throughput (vLLM batches a prompt's tokens in one forward pass; 8 x is a
conservative figure for the consumer GPUs of the catalog)."""

IDLE_FACTOR = 2.0
"""A pause inside a healthy stream is at most a recompute of the sequence's context behind
one other prefill: two first-token deadlines."""

ROUND_TO_SECONDS = 0.5


def _round_up(seconds: float) -> float:
    return math.ceil(seconds / ROUND_TO_SECONDS) * ROUND_TO_SECONDS


def served_context(config: PlatformConfig, name: str) -> int:
    """The context a local model is served with: its fit's `--max-model-len`, on cluster
    GPUs or a LAN host; on an Ollama service, the shortest fit of the service's models
    (Ollama takes one context length for all of them)."""
    model = config.inference.models[name]
    fit = config.model_fit(name)
    if fit is None:
        return model.context_length
    port = config.lan_port(name) if model.placement == "lan" else None
    host = config.cluster.lan_gpu_hosts.get(model.lan_host or "")
    service = host.service(port) if host is not None and port is not None else None
    if service is None or service.server != "ollama":
        return fit.max_model_len
    return min(
        fitted.max_model_len
        for other in config.lan_models(model.lan_host or "")
        if config.lan_port(other) == port and (fitted := config.model_fit(other)) is not None
    )


def derived_first_token_deadline(config: PlatformConfig, name: str) -> float:
    """The first-token deadline derived from the model's figures (no override)."""
    model = config.inference.models[name]
    prefill_rate = PREFILL_SPEEDUP * model.tokens_per_second
    return _round_up(model.first_token_seconds + served_context(config, name) / prefill_rate)


def first_token_deadline(config: PlatformConfig, name: str) -> float:
    """Seconds a request waits for a local model's first token before its fallback."""
    model = config.inference.models[name]
    if model.first_token_deadline_seconds is not None:
        return model.first_token_deadline_seconds
    return derived_first_token_deadline(config, name)


def total_deadline(config: PlatformConfig, name: str) -> float:
    """Seconds a request to a local model may take in all, streaming or not."""
    model = config.inference.models[name]
    per_sequence = model.tokens_per_second / model.max_concurrent_sequences
    whole = first_token_deadline(config, name) + served_context(config, name) / per_sequence
    return min(_round_up(whole), config.llm_gateway.router.request_timeout_seconds)


def stream_idle_deadline(config: PlatformConfig, name: str) -> float:
    """Seconds a local model's answer may pause between two events, after its first."""
    model = config.inference.models[name]
    idle = model.stream_idle_timeout_seconds
    if idle is None:
        idle = _round_up(IDLE_FACTOR * first_token_deadline(config, name))
    return min(idle, total_deadline(config, name))

"""How long the gateway waits on a local model server, derived from its fit and throughput.

Three figures per local model, all rendered into its LiteLLM deployment:

- `served_context`: the context vLLM is started with (`--max-model-len`, which the fit
  check may shorten below `context_length`), what the gateway advertises as
  `max_input_tokens`.
- `first_token_deadline`: how long a request waits for the server's first answer before
  the cloud fallback is tried. Derived as the expected worst first token
  (`first_token_seconds`) plus a prefill of the whole served context at
  `PREFILL_SPEEDUP` x the measured output throughput, rounded up to half a second;
  `first_token_deadline_seconds` overrides it.
- `non_stream_timeout`: the total a non-streaming request may take. vLLM sends nothing
  of a non-streaming answer before it is complete, so this is the first-token deadline
  plus the generation of a whole served context at one sequence's share of the
  throughput, capped by `llm_gateway.router.request_timeout_seconds`.
"""

from __future__ import annotations

import math

from components.config import PlatformConfig
from components.inference.fit import estimate

PREFILL_SPEEDUP = 8.0
"""Prefill processes prompt tokens this many times faster than the model's aggregate
output throughput (vLLM batches a prompt's tokens in one forward pass; 8 x is a
conservative figure for the consumer GPUs of the catalog)."""

ROUND_TO_SECONDS = 0.5


def _round_up(seconds: float) -> float:
    return math.ceil(seconds / ROUND_TO_SECONDS) * ROUND_TO_SECONDS


def served_context(config: PlatformConfig, name: str) -> int:
    """The context vLLM serves: the fit's `--max-model-len` for a cluster model, the
    configured `context_length` for a LAN host (whose server the platform does not start)."""
    model = config.inference.models[name]
    if model.placement != "cluster" or model.gpu_class is None:
        return model.context_length
    gpu = config.cluster.gpu_classes.get(model.gpu_class)
    if gpu is None:
        return model.context_length
    return estimate(model, gpu).max_model_len


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


def non_stream_timeout(config: PlatformConfig, name: str) -> float:
    """Seconds a non-streaming request to a local model may take in all."""
    model = config.inference.models[name]
    per_sequence = model.tokens_per_second / model.max_concurrent_sequences
    whole = first_token_deadline(config, name) + served_context(config, name) / per_sequence
    return min(_round_up(whole), config.llm_gateway.router.request_timeout_seconds)

"""vLLM's argument rules this project relies on, checked offline (vLLM needs CUDA to install).

Used to validate a model's `extra_args` before anything is deployed. Read from vLLM's
own parsers, which the pinned image's `vllm serve` builds (`make_arg_parser`):

* `vllm/entrypoints/openai/cli_args.py` at vllm-project/vllm@0052233: the frontend
  options (`BaseFrontendArgs`, `FrontendArgs`; a `bool` field becomes an
  `argparse.BooleanOptionalAction`, so it also has a `--no-` form) and
  `validate_parsed_serve_args`, which refuses `--enable-auto-tool-choice` without
  `--tool-call-parser` and `--enable-log-outputs` without `--enable-log-requests`;
* `vllm/engine/arg_utils.py` at vllm-project/vllm@001999d (`EngineArgs.add_cli_args`):
  the engine options below (plain `store_true` flags have no `--no-` form);
* vLLM's engine-argument reference (docs.vllm.ai, v0.8.5) for `--reasoning-parser`,
  `--tokenizer`, `--tokenizer-mode`, `--trust-remote-code` and `--load-format`.

Only the options listed are accepted: a typo or an option this project has not checked
is refused with where to add it, rather than discovered when the server exits on start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DERIVED: dict[str, str] = {
    "--model": "the model is the positional argument, from hf_repo",
    "--revision": "set from the model's revision",
    "--served-model-name": "set from the model's name in the catalog (what clients call)",
    "--host": "the server listens where the platform routes to it",
    "--port": "the platform routes to port 8000 of the server",
    "--download-dir": "the weight cache is mounted at /models",
    "--dtype": "derived from weight_format",
    "--max-model-len": "derived by the fit check from context_length",
    "--gpu-memory-utilization": "derived by the fit check",
    "--tensor-parallel-size": "set from gpu_count",
    "-tp": "set from gpu_count",
    "--max-num-seqs": "set from max_concurrent_sequences",
    "--kv-cache-dtype": "set from kv_cache_dtype",
    "--enable-prefix-caching": "set from prefix_caching",
    "--no-enable-prefix-caching": "set from prefix_caching",
    "--enable-chunked-prefill": "set from chunked_prefill",
    "--no-enable-chunked-prefill": "set from chunked_prefill",
}
"""Options the program sets itself, and the config field that sets them."""

REFUSED: dict[str, str] = {
    "--api-key": "the gateway calls local servers without a key; the mesh and network "
    "policies guard them",
    "--quantization": "vLLM reads the method from the checkpoint; a different one stops "
    "the server (set weight_format instead)",
    "-q": "vLLM reads the method from the checkpoint; a different one stops the server",
    "--uds": "the server must listen on TCP for the gateway",
    "--config": "the server's options all come from the stack config",
    "--headless": "a headless server answers no requests",
}
"""Options that would break what the platform relies on."""


@dataclass(frozen=True)
class Flag:
    """One option: whether it takes a value, and whether it has a `--no-` form."""

    takes_value: bool
    negatable: bool = False


_VALUE = Flag(takes_value=True)
_SWITCH = Flag(takes_value=False)
_TOGGLE = Flag(takes_value=False, negatable=True)

KNOWN: dict[str, Flag] = {
    # Frontend (cli_args.py @0052233).
    "--chat-template": _VALUE,
    "--chat-template-content-format": _VALUE,
    "--trust-request-chat-template": _TOGGLE,
    "--default-chat-template-kwargs": _VALUE,
    "--response-role": _VALUE,
    "--return-tokens-as-token-ids": _TOGGLE,
    "--enable-auto-tool-choice": _TOGGLE,
    "--exclude-tools-when-tool-choice-none": _TOGGLE,
    "--tool-call-parser": _VALUE,
    "--tool-parser-plugin": _VALUE,
    "--max-log-len": _VALUE,
    "--enable-prompt-tokens-details": _TOGGLE,
    "--enable-force-include-usage": _TOGGLE,
    "--enable-log-outputs": _TOGGLE,
    "--enable-log-requests": _TOGGLE,
    "--uvicorn-log-level": _VALUE,
    "--disable-uvicorn-access-log": _TOGGLE,
    "--disable-access-log-for-endpoints": _VALUE,
    "--enable-request-id-headers": _TOGGLE,
    "--disable-fastapi-docs": _TOGGLE,
    "--lora-modules": _VALUE,
    # Engine (arg_utils.py @001999d).
    "--enforce-eager": _SWITCH,
    "--max-num-batched-tokens": _VALUE,
    "--hf-overrides": _VALUE,
    "--limit-mm-per-prompt": _VALUE,
    "--mm-processor-kwargs": _VALUE,
    "--enable-lora": _SWITCH,
    "--max-loras": _VALUE,
    "--max-lora-rank": _VALUE,
    "--seed": _VALUE,
    "--swap-space": _VALUE,
    "--cpu-offload-gb": _VALUE,
    "--block-size": _VALUE,
    "--disable-sliding-window": _SWITCH,
    "--max-logprobs": _VALUE,
    "--disable-log-stats": _SWITCH,
    "--disable-custom-all-reduce": _SWITCH,
    "--model-impl": _VALUE,
    "--max-parallel-loading-workers": _VALUE,
    "--logits-processor-pattern": _VALUE,
    # Engine-argument reference (v0.8.5).
    "--reasoning-parser": _VALUE,
    "--tokenizer": _VALUE,
    "--tokenizer-mode": _VALUE,
    "--trust-remote-code": _TOGGLE,
    "--load-format": _VALUE,
}

WHOLE_NUMBER: dict[str, str] = {
    "--max-num-batched-tokens": "the fit sizes sliding-window layers by it",
}
"""Options whose value must be a positive whole number, and why the platform reads it."""

REQUIRES: dict[str, str] = {
    "--enable-auto-tool-choice": "--tool-call-parser",
    "--enable-log-outputs": "--enable-log-requests",
}
"""`validate_parsed_serve_args`: an option that the server refuses without another."""

_WORD = re.compile(r"^(-{1,2}[a-z][a-z0-9-]*)(=(.*))?$", re.DOTALL)


def _positive(flag: str) -> str:
    return "--" + flag[len("--no-") :] if flag.startswith("--no-") else flag


def extra_args_problems(args: Sequence[str]) -> list[tuple[int, str]]:
    """Why each of `args` cannot be added to `vllm serve`: (index, reason), empty when fine.

    Each item is one option, `--flag` or `--flag=value` (a separate value item would be
    ambiguous with the next option).
    """
    problems: list[tuple[int, str]] = []
    given: dict[str, int] = {}
    for index, arg in enumerate(args):
        match = _WORD.match(arg)
        if match is None:
            problems.append((index, "write each option as --flag or --flag=value"))
            continue
        flag, has_value = match.group(1), match.group(2) is not None
        positive = _positive(flag)
        if flag in DERIVED or positive in DERIVED:
            reason = DERIVED.get(flag) or DERIVED[positive]
            problems.append((index, f"{flag} is set by the platform: {reason}"))
            continue
        if flag in REFUSED:
            problems.append((index, f"{flag} is refused: {REFUSED[flag]}"))
            continue
        spec = KNOWN.get(flag) or (KNOWN.get(positive) if positive != flag else None)
        if spec is None or (positive != flag and not spec.negatable):
            problems.append(
                (
                    index,
                    f"{flag} is not a vLLM option this project has checked "
                    "(components/inference/vllm_flags.py lists them, with the sources)",
                )
            )
            continue
        if spec.takes_value and not has_value:
            problems.append((index, f"{flag} takes a value: write {flag}=<value>"))
            continue
        if not spec.takes_value and has_value:
            problems.append((index, f"{flag} is a switch and takes no value"))
            continue
        value = match.group(3) or ""
        if flag in WHOLE_NUMBER and not re.fullmatch(r"0*[1-9][0-9]{0,8}", value):
            problems.append((index, f"{flag} takes a positive whole number ({WHOLE_NUMBER[flag]})"))
            continue
        if flag in given or positive in given:
            problems.append((index, f"{positive} is given twice"))
        given[flag] = index
    for flag, needed in REQUIRES.items():
        if flag in given and needed not in given:
            problems.append(
                (given[flag], f"{flag} needs {needed} too (vLLM refuses it alone at start)")
            )
    return problems

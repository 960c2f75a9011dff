"""The proxy callback that keeps servers scaled to zero out of routing (not imported by the
program: the gateway's ConfigMap carries it, with `readiness_gate.py`, only when some
model autoscales to zero, and `litellm_settings.callbacks` then names
`readiness_hooks.proxy_handler_instance`; LiteLLM 1.83.14 loads it with
`litellm/proxy/types_utils/utils.py` `get_instance_fn`).

A model scaled to zero has a Service without ready endpoints; a request sent there fails
late through the mesh (it waits for the Linkerd queue's failfast), and LiteLLM's
health-check routing notices only at its next interval. The router asks every callback
to filter the deployments it may pick, after its health-check and cooldown filters and
before the order filter (`litellm/router.py` `async_get_healthy_deployments`,
`async_callback_filter_deployments`). `async_filter_deployments` drops each deployment
whose `model_info` carries a readiness gate and whose server the gate's background probe
does not find up (`readiness_gate.py`): the group's fallback (`order: 2`) answers at once.
When nothing is left the router raises its "no deployments" error, which the failover
hooks turn into one 503 with `Retry-After`.

LiteLLM is the proxy's own package, not a dependency of the program, so its import is
untyped here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from litellm.integrations.custom_logger import CustomLogger  # type: ignore[import-not-found]

GATE_MODULE = "readiness_gate"


def _load_gate_module() -> ModuleType:
    """`readiness_gate.py` from this file's directory: LiteLLM loads this module by its
    path, without putting the directory on `sys.path`."""
    loaded = sys.modules.get(GATE_MODULE)
    if loaded is not None:
        return loaded
    path = Path(__file__).with_name(f"{GATE_MODULE}.py")
    spec = importlib.util.spec_from_file_location(GATE_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[GATE_MODULE] = module
    spec.loader.exec_module(module)
    return module


readiness_gate = _load_gate_module()


class ReadinessHooks(CustomLogger):  # type: ignore[misc]
    """Deployments whose server is down are not candidates."""

    def __init__(self) -> None:
        super().__init__()
        self.readiness = readiness_gate.Readiness()

    async def async_filter_deployments(
        self,
        model: str,
        healthy_deployments: list[dict[str, Any]],
        messages: Any,
        request_kwargs: dict[str, Any] | None = None,
        parent_otel_span: Any = None,
    ) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = self.readiness.keep_ready(healthy_deployments)
        return kept


proxy_handler_instance = ReadinessHooks()

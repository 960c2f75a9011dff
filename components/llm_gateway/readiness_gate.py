"""Which local servers that may run no replica are up: probed by the gateway, not waited on.

Shipped in the gateway's ConfigMap beside `readiness_hooks.py`, the proxy callback that
asks it at each routing decision, when some model autoscales to zero (not imported by the
program; the tests import it). It needs only httpx and asyncio.

A model that autoscales to zero has, while it is down, a Service without ready
endpoints. A request sent there fails, but not always at once: in-cluster the connection
is refused, while through the Linkerd proxy a request to a Service without endpoints
waits in the balancer's queue until its failfast timeout, 3 s (linkerd2 edge-26.8.3
`policy-controller/grpc/src/outbound.rs` `default_queue_config`), and only then is a
503. Waiting that long for the fallback is what the gateway must not do.

So every deployment whose `model_info` carries a `Gate` (`READINESS_KEY`) is probed in
the background, every `poll_seconds`, with `GET <url>` (vLLM's `/health`), and counts as
ready only while its last probe answered 200 within `timeout_seconds`. `keep_ready` drops
the others from a routing decision: the group's fallback answers at once, and once the
server is up the next probe lets traffic back. Until its first probe answers, a gated
deployment counts as not ready: a freshly started gateway sends the model's first
requests to the fallback rather than risk the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

READINESS_KEY = "llm_platform_readiness"
"""The key of a deployment's `model_info` that carries its `Gate` (rendered by
`components/llm_gateway/litellm_config.py`)."""


@dataclass(frozen=True)
class Gate:
    """Where and how often a deployment's server is probed."""

    url: str
    poll_seconds: float
    timeout_seconds: float

    @classmethod
    def from_model_info(cls, model_info: Mapping[str, Any] | None) -> Gate | None:
        """The gate in a deployment's `model_info`, or None when it has none."""
        raw = (model_info or {}).get(READINESS_KEY)
        if not isinstance(raw, Mapping):
            return None
        return cls(
            url=str(raw["url"]),
            poll_seconds=float(raw["poll_seconds"]),
            timeout_seconds=float(raw["timeout_seconds"]),
        )


async def probe(client: httpx.AsyncClient, gate: Gate) -> bool:
    """One probe: True when the server answered 200 in time."""
    try:
        response = await client.get(gate.url, timeout=gate.timeout_seconds)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class Readiness:
    """The last probe result of every gated deployment, kept fresh by one task each."""

    def __init__(self) -> None:
        self._ready: dict[str, bool] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def is_ready(self, model_id: str) -> bool:
        """Whether the deployment's last probe passed (False before the first)."""
        return self._ready.get(model_id, False)

    def watch(self, model_id: str, gate: Gate) -> None:
        """Start probing the deployment, once (call from the running event loop)."""
        task = self._tasks.get(model_id)
        if task is not None and not task.done():
            return
        self._tasks[model_id] = asyncio.get_running_loop().create_task(
            self._poll(model_id, gate), name=f"readiness-{model_id}"
        )

    async def _poll(self, model_id: str, gate: Gate) -> None:
        # One connection pool per server, without keep-alive: a connection kept to a pod
        # that has gone would answer for it.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
            while True:
                self._ready[model_id] = await probe(client, gate)
                await asyncio.sleep(gate.poll_seconds)

    def keep_ready(self, deployments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The deployments that are not gated or whose server is up; starts the probes of
        those seen for the first time."""
        kept = []
        for deployment in deployments:
            model_info = deployment.get("model_info") or {}
            gate = Gate.from_model_info(model_info)
            model_id = str(model_info.get("id", ""))
            if gate is None:
                kept.append(deployment)
                continue
            self.watch(model_id, gate)
            if self.is_ready(model_id):
                kept.append(deployment)
        return kept

    async def close(self) -> None:
        """Stop every probe (tests)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

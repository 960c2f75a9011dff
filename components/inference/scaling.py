"""How an in-cluster model server follows demand: its KEDA ScaledObject (pure).

A model with `autoscaling` gets a `keda.sh/v1alpha1` ScaledObject on its Deployment, with
three Prometheus triggers (KEDA v2.20.2 `pkg/scalers/prometheus_scaler.go`: each query
must return one sample; an empty result counts as 0 with `ignoreNullValues`, its
default; a trigger is active when its value is above `activationThreshold`):

* **demand**: requests for the model at the gateway in the last `DEMAND_WINDOW`, fallbacks
  included (LiteLLM's `litellm_proxy_total_requests_metric_total`, whose `requested_model`
  is the model group, the model's own name, whichever deployment answered:
  `litellm/integrations/prometheus.py` `async_log_success_event` and
  `async_post_call_failure_hook`, LiteLLM 1.83.14). It wakes a server at zero. Capped at
  1 with a target of 1, it never asks for more than one replica; the server's own
  load scales beyond that. LiteLLM creates a series at its first increment, which
  `increase` cannot see, so series younger than the window count too.
* **load**: running plus waiting requests over the model's servers (vLLM v0.33.0
  `vllm/v1/metrics/loggers.py`: `vllm:num_requests_running`, `vllm:num_requests_waiting`,
  label `model_name` = the served name), against `max_concurrent_sequences` per replica.
* **KV cache**: the servers' KV-cache use summed (`vllm:kv_cache_usage_perc`, 1 = full),
  against `KV_CACHE_TARGET` per replica.

All three are `AverageValue` targets: the HPA KEDA makes asks for
`ceil(value / threshold)` replicas, the largest of the three, between `minReplicaCount`
and `maxReplicaCount`. KEDA scales a target to zero only after every trigger has been
inactive for `cooldownPeriod` (`pkg/scaling/executor/scale_scaledobjects.go`
`scaleToZeroOrIdle`), and never while a trigger errs without a `fallback` (a Prometheus
outage leaves the replicas as they are). `maxReplicaCount` is what the packing of the
model's GPU class holds on its nodes in service (`model_server.running_replicas`).

Maintenance wins: a GPU class (or every node of it) in maintenance, or a packing that
leaves the model no GPU, pauses the ScaledObject at zero replicas
(`autoscaling.keda.sh/paused-replicas: "0"`: KEDA removes its HPA and holds the target
there, `controllers/keda/scaledobject_controller.go` `reconcileScaledObject`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config import PlatformConfig
from components.inference.endpoints import INFERENCE_NAMESPACE, model_service_name

SCALED_OBJECT_API = "keda.sh/v1alpha1"
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
GATEWAY_REQUESTS = "litellm_proxy_total_requests_metric_total"
DEMAND_WINDOW_SECONDS = 120
"""Four scrapes of the gateway at the 30 s interval: `increase` needs two samples in it."""
POLLING_SECONDS = 15
"""How often KEDA evaluates the triggers (its default is 30 s)."""
KV_CACHE_TARGET = 0.8
"""KV-cache use per replica above which another replica is asked for."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ScalingPlan:
    """What the ScaledObject of one autoscaled model says (pure; tested on its own)."""

    name: str
    """The model's served name (vLLM's `model_name` label, LiteLLM's model group)."""
    deployment: str
    min_replicas: int
    max_replicas: int
    """What the class's nodes in service hold for the model; 0 pauses it."""
    idle_seconds: int
    sequences: int
    paused: bool

    @property
    def scales_to_zero(self) -> bool:
        """Whether the server may run no replica (idle at `min: 0`, or paused)."""
        return self.min_replicas == 0 or self.paused


def scaling_plan(config: PlatformConfig, name: str, max_replicas: int) -> ScalingPlan:
    """The plan of an autoscaled model whose class holds `max_replicas` of it."""
    model = config.inference.models[name]
    scaling = model.autoscaling
    assert scaling is not None, f"{name} does not autoscale"
    return ScalingPlan(
        name=name,
        deployment=model_service_name(name),
        min_replicas=scaling.min,
        max_replicas=max_replicas,
        idle_seconds=scaling.idle_minutes * 60,
        sequences=model.max_concurrent_sequences,
        paused=config.model_in_maintenance(name) or max_replicas == 0,
    )


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def demand_query(name: str) -> str:
    """Gateway requests for the model in the demand window, capped at 1 (PromQL)."""
    series = f'{GATEWAY_REQUESTS}{{requested_model="{_label(name)}"}}'
    window = f"{DEMAND_WINDOW_SECONDS}s"
    grown = f"sum(increase({series}[{window}]))"
    born = f"count({series} unless {series} offset {window})"
    return f"clamp_max(({grown} or vector(0)) + ({born} or vector(0)), 1)"


def _server_selector(name: str) -> str:
    return f'{{model_name="{_label(name)}", namespace="{INFERENCE_NAMESPACE}"}}'


def load_query(name: str) -> str:
    """Requests running and waiting on the model's servers together (PromQL)."""
    selector = _server_selector(name)
    return f"sum(vllm:num_requests_running{selector}) + sum(vllm:num_requests_waiting{selector})"


def kv_cache_query(name: str) -> str:
    """KV-cache use of the model's servers, summed (PromQL)."""
    return f"sum(vllm:kv_cache_usage_perc{_server_selector(name)})"


def _trigger(name: str, server: str, query: str, threshold: float) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "name": name,
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": server,
            "query": query,
            "threshold": f"{threshold:g}",
            "activationThreshold": "0",
        },
    }


def triggers(plan: ScalingPlan, prometheus_url: str) -> list[dict[str, Any]]:
    """The ScaledObject's triggers: gateway demand, server load, KV-cache use."""
    return [
        _trigger("demand", prometheus_url, demand_query(plan.name), 1),
        _trigger("load", prometheus_url, load_query(plan.name), plan.sequences),
        _trigger("kv-cache", prometheus_url, kv_cache_query(plan.name), KV_CACHE_TARGET),
    ]


def scaled_object_spec(plan: ScalingPlan, prometheus_url: str) -> dict[str, Any]:
    """`spec` of the model's ScaledObject."""
    # With every trigger idle, the server stops `idle_seconds` after the last request
    # left the demand window.
    cooldown = max(plan.idle_seconds - DEMAND_WINDOW_SECONDS, 0)
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.deployment},
        "pollingInterval": POLLING_SECONDS,
        "cooldownPeriod": cooldown,
        # A new ScaledObject on a server nobody has asked for yet waits as long as an idle one.
        "initialCooldownPeriod": cooldown,
        "minReplicaCount": plan.min_replicas,
        "maxReplicaCount": max(plan.max_replicas, 1),
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                # Extra replicas stay as long as an idle server does (a GPU cold start
                # costs minutes); scaling up is immediate.
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": min(plan.idle_seconds, 3600)}
                }
            }
        },
        "triggers": triggers(plan, prometheus_url),
    }


def scaled_object_annotations(plan: ScalingPlan) -> dict[str, str]:
    """Maintenance (or no GPU left for the model) holds it at zero replicas."""
    return {PAUSED_REPLICAS_ANNOTATION: "0"} if plan.paused else {}

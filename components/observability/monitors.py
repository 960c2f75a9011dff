"""What Prometheus scrapes: ServiceMonitor and PodMonitor specs, one per platform part (pure).

All monitors live in the observability namespace and name their target namespace in
`namespaceSelector`, so this area owns them. Targets:

* vLLM: Services labelled `app.kubernetes.io/component: model-server` in `inference`,
  `/metrics`: in-cluster servers on port `http`, LAN GPU hosts on the port of each vLLM
  service they run (`vllm-<port>`); their Ollama ports (no Prometheus endpoint) are
  never named, so never scraped;
* LiteLLM: Service `litellm` in `llm-gateway`, port `http`, `/metrics/` (a mount);
* Traefik: its pods' `metrics` port (chart traefik 41.3.0);
* cert-manager: the controller pods' `http-metrics` port (9402);
* CloudNativePG: every instance pod (`cnpg.io/podRole: instance`), port `metrics`, as the
  CNPG monitoring docs prescribe for a user-managed PodMonitor;
* Linkerd (mesh on): every meshed pod's proxy, container `linkerd-proxy`, port
  `linkerd-admin` (as linkerd-viz's own scrape job does);
* the embeddings server (data layer on): Service `embeddings` in `data`, port `metrics`
  (TEI's Prometheus port). Qdrant is not scraped: its /metrics needs the API key.

The DCGM exporter brings its own ServiceMonitor (its chart's `serviceMonitor.enabled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config import PlatformConfig
from components.inference.endpoints import (
    INFERENCE_NAMESPACE,
    MODEL_SERVER_COMPONENT,
    lan_port_name,
)
from components.labels import selector_labels

SCRAPE_INTERVAL = "30s"
LLM_GATEWAY_NAMESPACE = "llm-gateway"
LITELLM_SERVICE = "litellm"
DATA_NAMESPACE = "data"
EMBEDDINGS_SERVICE = "embeddings"
LITELLM_METRICS_PATH = "/metrics/"
"""LiteLLM mounts its Prometheus app at /metrics; the mount's canonical path ends in /."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Monitor:
    """A ServiceMonitor or PodMonitor: its kind, object name and spec."""

    kind: str
    name: str
    spec: dict[str, Any]


def _in(namespace: str) -> dict[str, Any]:
    return {"matchNames": [namespace]}


def vllm_monitor(config: PlatformConfig) -> Monitor:
    """Model servers and the vLLM services of LAN GPU hosts; Ollama has no /metrics."""
    lan = {
        lan_port_name(s.server, s.port)
        for host in config.cluster.lan_gpu_hosts.values()
        for s in host.services
        if s.server == "vllm"
    }
    ports = ["http", *sorted(lan)]
    return Monitor(
        kind="ServiceMonitor",
        name="vllm",
        spec={
            "namespaceSelector": _in(INFERENCE_NAMESPACE),
            "selector": {"matchLabels": {"app.kubernetes.io/component": MODEL_SERVER_COMPONENT}},
            "endpoints": [
                {"port": port, "path": "/metrics", "interval": SCRAPE_INTERVAL} for port in ports
            ],
        },
    )


def litellm_monitor() -> Monitor:
    """The LLM gateway's Prometheus endpoint (the prometheus callback, no auth)."""
    return Monitor(
        kind="ServiceMonitor",
        name="litellm",
        spec={
            "namespaceSelector": _in(LLM_GATEWAY_NAMESPACE),
            "selector": {"matchLabels": selector_labels(name=LITELLM_SERVICE)},
            "endpoints": [
                {"port": "http", "path": LITELLM_METRICS_PATH, "interval": SCRAPE_INTERVAL}
            ],
        },
    )


def _pod_monitor(
    name: str,
    namespace_selector: dict[str, Any],
    selector: dict[str, Any],
    port: str,
    relabelings: list[dict[str, Any]] | None = None,
) -> Monitor:
    endpoint: dict[str, Any] = {"port": port, "path": "/metrics", "interval": SCRAPE_INTERVAL}
    if relabelings:
        endpoint["relabelings"] = relabelings
    return Monitor(
        kind="PodMonitor",
        name=name,
        spec={
            "namespaceSelector": namespace_selector,
            "selector": selector,
            "podMetricsEndpoints": [endpoint],
        },
    )


def platform_monitors(config: PlatformConfig) -> tuple[Monitor, ...]:
    """Every monitor the stack needs, in a stable order."""
    monitors = [
        vllm_monitor(config),
        litellm_monitor(),
        _pod_monitor(
            "traefik",
            _in(config.ingress_namespace),
            {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
            "metrics",
        ),
        _pod_monitor(
            "cert-manager",
            _in("cert-manager"),
            {
                "matchLabels": {
                    "app.kubernetes.io/name": "cert-manager",
                    "app.kubernetes.io/component": "controller",
                }
            },
            "http-metrics",
        ),
        _pod_monitor(
            "cnpg",
            _in(LLM_GATEWAY_NAMESPACE),
            {
                "matchLabels": {"cnpg.io/podRole": "instance"},
                "matchExpressions": [{"key": "cnpg.io/cluster", "operator": "Exists"}],
            },
            "metrics",
        ),
    ]
    if config.data.enabled:
        monitors.append(
            Monitor(
                kind="ServiceMonitor",
                name="embeddings",
                spec={
                    "namespaceSelector": _in(DATA_NAMESPACE),
                    "selector": {"matchLabels": selector_labels(name=EMBEDDINGS_SERVICE)},
                    "endpoints": [
                        {"port": "metrics", "path": "/metrics", "interval": SCRAPE_INTERVAL}
                    ],
                },
            )
        )
    if config.mesh.enabled:
        monitors.append(
            _pod_monitor(
                "linkerd-proxy",
                {"any": True},
                {
                    "matchExpressions": [
                        {"key": "linkerd.io/control-plane-ns", "operator": "Exists"}
                    ]
                },
                "linkerd-admin",
                relabelings=[
                    {
                        "action": "keep",
                        "sourceLabels": ["__meta_kubernetes_pod_container_name"],
                        "regex": "linkerd-proxy",
                    }
                ],
            )
        )
    return tuple(monitors)

"""The one labels helper: recommended Kubernetes labels for everything the platform creates."""

from __future__ import annotations

PART_OF = "llm-platform"
MANAGED_BY = "pulumi"


def standard_labels(*, name: str, component: str, instance: str | None = None) -> dict[str, str]:
    """`app.kubernetes.io/*` labels for an object of an area (`component`) named `name`."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance or name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_labels(*, name: str, instance: str | None = None) -> dict[str, str]:
    """The stable subset used in selectors (never changes for a running workload)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance or name}

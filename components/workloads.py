"""The one description of a platform workload other areas may refer to (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Workload:
    """A Deployment or StatefulSet an area runs, by its contract name."""

    kind: str
    namespace: str
    name: str
    api_version: str = "apps/v1"

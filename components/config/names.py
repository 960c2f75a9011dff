"""Model names: the name clients call, and the Kubernetes name derived from it, in one place.

Clients call a model by its served name (`llama-3.1-8b`, `Qwen3-8B`): letters, digits,
`.`, `_` and `-`. Kubernetes object names (Services `vllm-<name>`, caches, labels) and
the names of generated containers are DNS labels, so they use `kubernetes_name`, which
lower-cases the served name and turns `.` and `_` into `-`. A served name that already
is a DNS label is its own Kubernetes name, so existing models keep their objects.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

SERVED_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,50}[A-Za-z0-9])?$"
ServedName = Annotated[str, StringConstraints(pattern=SERVED_NAME_PATTERN)]
"""The model name clients send: up to 52 letters, digits, `.`, `_`, `-`.

52 leaves room for the longest object derived from it, `vllm-<name>-cache` (63)."""

_NOT_IN_A_LABEL = re.compile(r"[._]")


def kubernetes_name(served_name: str) -> str:
    """The DNS-label form of a served model name (`Qwen3.5-8B` -> `qwen3-5-8b`).

    Each `.` and `_` becomes one `-`, and nothing else changes, so a name that is a DNS
    label already (`a--b` included) keeps its objects."""
    return _NOT_IN_A_LABEL.sub("-", served_name.lower())

"""A written render read back: the Kubernetes objects under `manifests/` and `charts/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_file(path: Path) -> Any:
    """One YAML file of a render (libyaml's safe loader when PyYAML has it)."""
    return yaml.load(path.read_text(), Loader=_SafeLoader)  # noqa: S506 (a safe loader)


def load_objects(render_dir: Path) -> list[dict[str, Any]]:
    """Every object of the platform's own manifests and of every Helm release, in path order."""
    objects: list[dict[str, Any]] = []
    for tree in ("manifests", "charts"):
        for path in sorted((render_dir / tree).rglob("*.yaml")):
            for document in yaml.load_all(path.read_text(), Loader=_SafeLoader):
                if isinstance(document, dict) and document.get("kind"):
                    objects.append(document)
    return objects

"""A written render read back: the Kubernetes objects under `manifests/` and `charts/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_objects(render_dir: Path) -> list[dict[str, Any]]:
    """Every object of the platform's own manifests and of every Helm release, in path order."""
    objects: list[dict[str, Any]] = []
    for tree in ("manifests", "charts"):
        for path in sorted((render_dir / tree).rglob("*.yaml")):
            for document in yaml.load_all(path.read_text(), Loader=_SafeLoader):
                if isinstance(document, dict) and document.get("kind"):
                    objects.append(document)
    return objects

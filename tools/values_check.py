"""Which Helm values a chart ignores: every key the program sets must change what it renders.

Helm drops a values key no template reads, silently: a misspelled `replicas` for
`replicaCount`, a `minAvailable` under a disabled `podDisruptionBudget`, a key a chart
bump renamed. This check asks the chart itself instead of a hand-kept list of keys:
each leaf the program sets is changed (a boolean flipped, a number or string altered, a
list emptied or filled, a map given a key) and the release is rendered again by the
real Helm engine; when the output is the same, the key is also removed, and rendered
once more. A key that changes neither way is not read, for these values: that is a
finding, whether the key is misspelled or only dead under another setting.

Two things in a rendered chart change with every key and are left out of the
comparison, since they say nothing of what the key does: a ConfigMap that echoes the
whole of `.Values` (`VALUES_ECHOES`, Linkerd's `linkerd-config`), and `checksum/...`
pod annotations (a hash of other output, which is compared itself).

Lists are leaves (a chart reads them whole, with `toYaml` or `range`); maps are walked
down to their leaves, so `podAnnotations.foo` is checked as one key. A render that fails
after the change counts as read: the chart looked at the key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import charts, helm_template
from tools.releases import KUBE_VERSION, ReleaseRender

Path_ = tuple[str, ...]

WORKERS = 2
"""Renders at once: the engine runs outside the GIL (ctypes), one per core here."""


@dataclass(frozen=True, slots=True)
class ReleaseInput:
    """Everything a render of one release depends on."""

    archive: Path
    release: str
    namespace: str
    values: Mapping[str, Any]
    kube_version: str
    api_versions: frozenset[str]

    @classmethod
    def of(cls, release: ReleaseRender) -> ReleaseInput:
        """The inputs a stack's release was templated with (`tools.releases`)."""
        return cls(
            archive=charts.archive_of(release.chart),
            release=release.release,
            namespace=release.namespace,
            values=release.values,
            kube_version=KUBE_VERSION,
            api_versions=release.api_versions,
        )


def leaf_paths(values: Mapping[str, Any], prefix: Path_ = ()) -> Iterator[Path_]:
    """Every leaf key path of a values map; lists, scalars and empty maps are leaves."""
    for key, value in values.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, path)
        else:
            yield path


def changed_value(value: Any) -> Any:
    """A different value of the same shape, as far as one exists."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7
    if isinstance(value, str):
        return value + "-probe"
    if isinstance(value, list):
        return [] if value else ["probe"]
    if isinstance(value, Mapping):
        return {"probe": "probe"}
    return "probe"


def _with(values: Mapping[str, Any], path: Path_, new: Any, *, remove: bool) -> dict[str, Any]:
    out = copy.deepcopy(dict(values))
    node = out
    for key in path[:-1]:
        node = node[key]
    if remove:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


def _render_or_raise(release: ReleaseInput, values: Mapping[str, Any]) -> dict[str, str]:
    return helm_template.render_text(
        release.archive,
        release=release.release,
        namespace=release.namespace,
        values=values,
        kube_version=release.kube_version,
        api_versions=release.api_versions,
    )


def _render(release: ReleaseInput, values: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    """What the values render to, comparable; None when the chart refuses them (it read
    them, or the document is not YAML any more)."""
    try:
        return _comparable(_render_or_raise(release, values))
    except helm_template.TemplateError:
        return None


VALUES_ECHOES: frozenset[tuple[str, str, str]] = frozenset(
    {("ConfigMap", "linkerd-config", "values")}
)
"""(kind, name, data key) of objects that dump every values key the chart was given."""


def _normalized(body: Mapping[str, Any]) -> Any:
    metadata = body.get("metadata") or {}
    out = dict(body)
    if body.get("kind") == "ConfigMap":
        echoed = {key for kind, name, key in VALUES_ECHOES if metadata.get("name") == name}
        out["data"] = {k: v for k, v in (body.get("data") or {}).items() if k not in echoed}
    return _without_checksums(out)


def _without_checksums(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_checksums(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out = {}
    for key, value in node.items():
        if key == "annotations" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if "checksum" not in str(k)}
        out[key] = _without_checksums(value)
    return out


def _comparable(rendered: Mapping[str, str]) -> dict[str, list[Any]]:
    """Each template's documents, normalized (see the module docstring)."""
    return {
        source: [_normalized(body) for body in helm_template.documents(text)]
        for source, text in rendered.items()
        if not source.endswith("NOTES.txt")
    }


class NondeterministicChartError(Exception):
    """The chart renders differently twice with the same values: nothing can be compared."""


def _is_read(release: ReleaseInput, baseline: dict[str, list[Any]], path: Path_) -> bool:
    node: Any = release.values
    for key in path:
        node = node[key]
    for remove in (False, True):
        probe = _with(release.values, path, changed_value(node), remove=remove)
        if _render(release, probe) != baseline:
            return True
    return False


def unread_keys(release: ReleaseInput, only: Iterable[str] | None = None) -> list[str]:
    """Dotted paths of the values the chart does not read, sorted (dots in keys kept).

    `only` limits the probes to those dotted leaf paths (the rest still render).
    """
    try:
        baseline = _comparable(_render_or_raise(release, release.values))
    except helm_template.TemplateError as error:
        raise helm_template.TemplateError(
            f"release {release.release} does not render: {error}"
        ) from error
    if _render(release, release.values) != baseline:
        raise NondeterministicChartError(
            f"release {release.release}: two renders of the same values differ"
        )
    paths = list(leaf_paths(release.values))
    if only is not None:
        wanted = set(only)
        paths = [path for path in paths if ".".join(path) in wanted]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        read = list(pool.map(lambda path: _is_read(release, baseline, path), paths))
    return sorted(
        ".".join(path) for path, was_read in zip(paths, read, strict=True) if not was_read
    )

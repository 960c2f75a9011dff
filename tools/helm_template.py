"""The Helm engine behind the offline render: templating, CRDs, values schemas, pulls.

Everything the project asks of Helm goes through this module, so the engine can be
swapped (for the Helm CLI's `helm template --kube-version ... --api-versions ...`)
without touching the render or the tests. The engine is helm-python-sdk, Helm's own Go
SDK (`ENGINE`, Helm v4) behind ctypes, in-process and offline: nothing here contacts a
cluster (`lookup` answers empty), and only `pull` uses the network.

`template` renders a release as `helm install --dry-run` with `--kube-version` and
`--api-versions` would: the release name, namespace and values the program gives the
`helm.v3.Release`, the stack's Kubernetes version, and the API versions the stack's
CRDs serve (charts switch objects on with `.Capabilities.APIVersions.Has`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
from helm_python import _native

from components.versions import HelmChart

ENGINE = f"Helm {helm_python.helm_sdk_version()} (helm-python-sdk {helm_python.__version__})"
"""The engine that renders, for the docs and the summary."""

HOOK_ANNOTATION = "helm.sh/hook"
TEST_HOOKS = frozenset({"test", "test-success", "test-failure"})
"""Hooks that run only under `helm test`: never created by an install."""


class ChartLoadError(Exception):
    """The archive is not a loadable chart."""


class ChartPullError(Exception):
    """The chart could not be pulled from its repository."""


class TemplateError(Exception):
    """A chart failed to render with the given values."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """What an install creates: the CRDs of the `crds/` folders, then the objects."""

    crds: tuple[dict[str, Any], ...]
    objects: tuple[RenderedObject, ...]


@dataclass(frozen=True, slots=True)
class RenderedObject:
    """One object a release creates: the template it came from, and its body."""

    source: str
    body: dict[str, Any]

    @property
    def hook(self) -> str | None:
        """The Helm hook that creates it (`pre-install,...`), None for a plain object."""
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(HOOK_ANNOTATION)
        return str(value) if value else None


@cache
def _load(archive: Path) -> helm_python.Chart:
    try:
        return helm_python.Chart.load(archive)
    except helm_python.HelmError as error:
        raise ChartLoadError(str(error).strip().splitlines()[0]) from error


@cache
def _archive_bytes(archive: Path) -> bytes:
    return archive.read_bytes()


def chart_identity(archive: Path) -> tuple[str, str]:
    """(name, version) from the archive's Chart.yaml."""
    chart = _load(archive)
    return chart.name, chart.version


def chart_metadata(archive: Path) -> dict[str, Any]:
    """The archive's Chart.yaml."""
    return _load(archive).metadata


def pull(chart: HelmChart, destination: Path) -> Path:
    """`helm pull <name> --repo <repo> --version <version>` (or of the `oci://` reference)
    into `destination`."""
    try:
        helm_python.pull(
            chart.reference,
            repo_url=None if chart.oci else chart.repo,
            version=chart.version,
            destination=destination,
        )
    except helm_python.HelmError as error:
        raise ChartPullError(str(error)) from error
    archives = sorted(destination.glob("*.tgz"))
    if len(archives) != 1:
        raise ChartPullError(f"pull of {chart.name} {chart.version} left {len(archives)} archives")
    return archives[0]


def default_values(archive: Path) -> dict[str, Any]:
    """The chart's values.yaml (its subcharts' defaults under their names)."""
    return _load(archive).merge_values({})


def values_schema(archive: Path) -> dict[str, Any] | None:
    """The chart's values.schema.json, None when it ships none."""
    return _load(archive).schema


def schema_error(archive: Path, values: Mapping[str, Any]) -> str | None:
    """Why `values` break the chart's values.schema.json (Helm's message), None when fine."""
    try:
        _load(archive).validate_schema(dict(values))
    except helm_python.HelmValuesError as error:
        return str(error).strip()
    return None


_DOCUMENT_SEPARATOR = re.compile(r"^---\s*", re.MULTILINE)
"""How Helm splits a rendered template into documents (pkg/release/v1/util/manifest.go,
`sep`, a `---` at the start of a line, whatever follows it, so
`---# comment` starts a document), without that pattern's backtracking."""


@cache
def _parsed(chunk: str) -> Any:
    """One document as Helm sends it to the API server: parsed by Helm's own YAML library
    (sigs.k8s.io/yaml, YAML to JSON), once per process, so both render passes share the
    large CRD documents. Callers never mutate what it returns."""
    try:
        return helm_python.values_from_yaml(chunk)
    except helm_python.HelmError as error:
        raise TemplateError(f"a rendered document is not YAML: {error}") from error


def documents(text: str) -> Iterable[dict[str, Any]]:
    """The non-empty documents of a rendered template, split and parsed as Helm does."""
    for chunk in _DOCUMENT_SEPARATOR.split(text):
        if not chunk.strip():
            continue
        document = _parsed(chunk)
        if isinstance(document, dict) and document:
            yield document


def reads_api_versions(archive: Path) -> bool:
    """Whether any template of the chart (or a subchart) asks `.Capabilities.APIVersions`."""
    return any("APIVersions" in entry["data"] for entry in _load(archive).templates)


def installed_crds(archive: Path, rendered: Mapping[str, str]) -> list[dict[str, Any]]:
    """The CRDs under `crds/` that an install with these values creates.

    Helm installs the `crds/` folder of the chart and of every subchart the values leave
    enabled (a disabled subchart's CRDs are not installed); `rendered` is the engine's
    output for those values, which lists every template of every enabled (sub)chart,
    even one that renders empty.
    """
    top = _load(archive).name
    enabled = {source.rsplit("/templates/", 1)[0] for source in rendered if "/templates/" in source}
    enabled.add(top)
    found: list[dict[str, Any]] = []
    for entry in sorted(_load(archive).crds, key=lambda e: e["filename"]):
        owner = entry["filename"].rsplit("/crds/", 1)[0]
        if owner in enabled:
            found.extend(documents(entry["data"]))
    return found


def render_text(
    archive: Path,
    *,
    release: str,
    namespace: str,
    values: Mapping[str, Any],
    kube_version: str,
    api_versions: Iterable[str] = (),
) -> dict[str, str]:
    """What Helm's engine renders: template path -> text (NOTES.txt included)."""
    options = {
        "name": release,
        "namespace": namespace,
        "is_install": True,
        "kube_version": kube_version,
        "api_versions": sorted(set(api_versions)),
    }
    # A render drops the subcharts its values disable from the loaded chart, for good
    # (seen with helm-python-sdk 0.2.2: a later render of the same handle lacks them), so
    # every render gets a chart of its own, loaded from the archive's bytes.
    with helm_python.Chart.load_archive(_archive_bytes(archive)) as chart:
        try:
            # `Chart.render` of 0.2.2 passes no Kubernetes or API versions, although the
            # library's render options take them (`kube_version`, `api_versions`): call it
            # with the full options.
            rendered: dict[str, str] = json.loads(
                _native.call_string(
                    "helm_render", chart._raw(), json.dumps(dict(values)), json.dumps(options)
                )
            )
        except helm_python.HelmError as error:
            raise TemplateError(str(error).strip()) from error
    return rendered


def template(
    archive: Path,
    *,
    release: str,
    namespace: str,
    values: Mapping[str, Any],
    kube_version: str,
    api_versions: Iterable[str] = (),
) -> Rendered:
    """Every object an install of `archive` with `values` creates (test hooks excluded).

    Objects are sorted by template path, in the order of the documents inside each;
    NOTES.txt and empty documents are left out. CRDs of `crds/` folders come apart.
    """
    rendered = render_text(
        archive,
        release=release,
        namespace=namespace,
        values=values,
        kube_version=kube_version,
        api_versions=api_versions,
    )
    objects: list[RenderedObject] = []
    for source in sorted(rendered):
        if source.endswith("NOTES.txt"):
            continue
        for body in documents(rendered[source]):
            item = RenderedObject(source, body)
            if item.hook is not None and set(item.hook.split(",")) <= TEST_HOOKS:
                continue
            objects.append(item)
    return Rendered(crds=tuple(installed_crds(archive, rendered)), objects=tuple(objects))

"""What each Helm release of a program run creates in the cluster, templated offline.

For every `helm.v3.Release` the program registered, the pinned chart archive (from
`tools.charts`) is templated by the real Helm engine (`tools.helm_template`) with
exactly the values recorded for that Release, its release name and namespace, the
stack's Kubernetes version, and the API versions of every CRD the stack installs. The
result is the list of objects `pulumi up` would create through that release, each
carrying its namespace (Helm fills in the release namespace for namespaced objects
that name none), plus the CRDs of the chart's `crds/` folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from components import versions
from components.versions import HelmChart
from tools import charts, helm_template
from tools.mock_engine import SECRET, ProgramRun, RecordedResource

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
TEMPLATING_WORKERS = 2

KUBE_VERSION = versions.K3S_VERSION.split("+", 1)[0]
"""The Kubernetes version charts see in `.Capabilities.KubeVersion` (k3s's, without +k3sN)."""

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
"""Built-in kinds without a namespace; custom kinds take their scope from their CRD."""


@dataclass(frozen=True, slots=True)
class ReleaseRender:
    """One release: what it is, and every object it creates."""

    release: str
    namespace: str
    chart: HelmChart
    values: Mapping[str, Any]
    objects: tuple[helm_template.RenderedObject, ...]
    crds: tuple[dict[str, Any], ...]
    """CRDs of the `crds/` folders Helm installs (templated CRDs are among `objects`)."""
    api_versions: frozenset[str]
    """What `.Capabilities.APIVersions` answered when it was templated."""

    def all_objects(self) -> list[dict[str, Any]]:
        """The bodies of the CRDs and the objects, in that order."""
        return [*self.crds, *(o.body for o in self.objects)]


class ReleaseError(Exception):
    """A release could not be templated; the message names it."""


def pinned_chart(name: str, version: str) -> HelmChart:
    """The pin of a chart a Release names; ReleaseError when it is not pinned."""
    for chart in versions.HELM_CHARTS:
        if name in (chart.name, chart.reference) and chart.version == version:
            return chart
    raise ReleaseError(f"release of chart {name} {version}: not pinned in components.versions")


def helm_releases(run: ProgramRun) -> list[RecordedResource]:
    """The Helm releases of a run, in registration order."""
    return [r for r in run.resources if r.type == HELM_RELEASE]


_GA_VERSION = re.compile(r"^v[0-9]+$")


@cache
def builtin_api_versions(kube_version: str = versions.KUBERNETES_VERSION) -> frozenset[str]:
    """What a cluster of `kube_version` answers to `.Capabilities.APIVersions` for its own
    kinds: `<group>/<version>` and `<group>/<version>/<Kind>` of every built-in resource
    (Helm lists both from discovery). Only GA versions: alpha and beta APIs are off by
    default. Read from kubernetes-validate's OpenAPI definitions of that version."""
    definitions_file = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{kube_version}.0-local"
        / "_definitions.json"
    )
    definitions = json.loads(definitions_file.read_text(encoding="utf-8"))
    found: set[str] = set()
    for definition in definitions["$defs"].values():
        properties = definition.get("properties") or {}
        if not {"apiVersion", "kind", "metadata"} <= set(properties):
            continue
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            if not _GA_VERSION.match(gvk["version"]) or gvk["kind"].endswith("List"):
                continue
            group_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            found |= {group_version, f"{group_version}/{gvk['kind']}"}
    return frozenset(found)


def _served_api_versions(crds: Iterable[Mapping[str, Any]]) -> set[str]:
    served = set()
    for crd in crds:
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or []:
            if version.get("served", True):
                served.add(f"{spec['group']}/{version['name']}")
                served.add(f"{spec['group']}/{version['name']}/{spec['names']['kind']}")
    return served


def _is_crd(body: Mapping[str, Any]) -> bool:
    return body.get("kind") == "CustomResourceDefinition"


def _crd_scopes(crds: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(group, kind) -> "Namespaced" or "Cluster"."""
    scopes = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        scopes[(spec.get("group", ""), spec.get("names", {}).get("kind", ""))] = spec.get(
            "scope", "Namespaced"
        )
    return scopes


def is_namespaced(body: Mapping[str, Any], scopes: Mapping[tuple[str, str], str]) -> bool:
    """Whether the object lives in a namespace (built-in kinds by name, custom by CRD)."""
    kind = str(body.get("kind", ""))
    api_version = str(body.get("apiVersion", ""))
    group = api_version.split("/")[0] if "/" in api_version else ""
    if (group, kind) in scopes:
        return scopes[(group, kind)] == "Namespaced"
    return kind not in CLUSTER_SCOPED_KINDS


def _with_namespace(
    item: helm_template.RenderedObject, namespace: str, scopes: Mapping[tuple[str, str], str]
) -> helm_template.RenderedObject:
    body = item.body
    metadata = dict(body.get("metadata") or {})
    if is_namespaced(body, scopes) and not metadata.get("namespace"):
        metadata["namespace"] = namespace
        body = {**body, "metadata": metadata}
    return helm_template.RenderedObject(item.source, body)


def _template(
    resource: RecordedResource, chart: HelmChart, archive: Path, api_versions: Iterable[str]
) -> helm_template.Rendered:
    inputs = resource.inputs
    try:
        return helm_template.template(
            archive,
            release=str(inputs.get("name") or resource.name),
            namespace=str(inputs.get("namespace") or "default"),
            values=inputs.get("values") or {},
            kube_version=KUBE_VERSION,
            api_versions=api_versions,
        )
    except helm_template.TemplateError as error:
        raise ReleaseError(
            f"release {resource.name} ({chart.name} {chart.version}): {error}"
        ) from error


def render_releases(run: ProgramRun, *, cache: Path = charts.CACHE) -> list[ReleaseRender]:
    """Every Helm release of `run`, templated; raises ReleaseError or ChartUnavailableError.

    Two passes: the first (with the built-in APIs only) finds the CRDs every release
    installs, so that the second renders again, with every API version the cluster will
    serve, each chart whose templates ask for them.
    """
    releases = helm_releases(run)
    pins = {
        r.urn: pinned_chart(str(r.inputs.get("chart")), str(r.inputs.get("version")))
        for r in releases
    }
    archives = {urn: charts.archive_of(chart, cache) for urn, chart in pins.items()}
    # The engine and its YAML parser run outside the GIL (ctypes): one release per core.
    with ThreadPoolExecutor(max_workers=TEMPLATING_WORKERS) as pool:
        rendered_first = pool.map(
            lambda r: _template(r, pins[r.urn], archives[r.urn], builtin_api_versions()),
            releases,
        )
        first = {r.urn: done for r, done in zip(releases, rendered_first, strict=True)}
    all_crds = [
        crd
        for rendered in first.values()
        for crd in [*rendered.crds, *(o.body for o in rendered.objects if _is_crd(o.body))]
    ]
    api_versions = _served_api_versions(all_crds) | builtin_api_versions()
    scopes = _crd_scopes(all_crds)
    out = []
    for release in releases:
        namespace = str(release.inputs.get("namespace") or "default")
        archive = archives[release.urn]
        rendered = (
            _template(release, pins[release.urn], archive, api_versions)
            if helm_template.reads_api_versions(archive)
            else first[release.urn]
        )
        out.append(
            ReleaseRender(
                release=str(release.inputs.get("name") or release.name),
                namespace=namespace,
                chart=pins[release.urn],
                values=release.inputs.get("values") or {},
                objects=tuple(_with_namespace(o, namespace, scopes) for o in rendered.objects),
                crds=rendered.crds,
                api_versions=frozenset(api_versions),
            )
        )
    return out


def object_file(body: Mapping[str, Any]) -> str:
    """`<kind>-<name>.yaml`, lower-cased kind, as the render names objects."""
    name = (body.get("metadata") or {}).get("name", "unnamed")
    return f"{str(body.get('kind', 'object')).lower()}-{name}.yaml"


SECRET_PAYLOAD_KEYS = ("data", "stringData")


def redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object as the render may write it: a Secret's payload as `"[secret]"`.

    A chart's Secret holds whatever the chart generates or was given (keys, passwords,
    certificates); the render shows that it exists and its keys' names, never the values.
    """
    if body.get("kind") != "Secret":
        return dict(body)
    out = dict(body)
    for key in SECRET_PAYLOAD_KEYS:
        payload = out.get(key)
        if isinstance(payload, Mapping):
            out[key] = {name: SECRET for name in payload}
        elif payload is not None:
            out[key] = SECRET
    return out


def release_files(release: ReleaseRender) -> dict[Path, dict[str, Any]]:
    """Render-relative paths of a release's objects (`charts/<release>/[crds/]<file>`),
    Secret payloads redacted.

    Two objects of one kind and name in different namespaces get the namespace in the
    file name; a true duplicate (same namespace too) is a ReleaseError.
    """
    base = Path("charts") / release.release
    files: dict[Path, dict[str, Any]] = {}
    for crd in release.crds:
        files[base / "crds" / object_file(crd)] = crd
    for item in release.objects:
        path = base / object_file(item.body)
        if path in files:
            namespace = (item.body.get("metadata") or {}).get("namespace", "_cluster")
            path = base / f"{namespace}-{object_file(item.body)}"
            if path in files:
                raise ReleaseError(f"release {release.release}: two objects render to {path}")
        files[path] = redacted(item.body)
    return files


def all_chart_objects(releases: Sequence[ReleaseRender]) -> list[dict[str, Any]]:
    """Every object every release creates, CRDs included."""
    return [body for release in releases for body in release.all_objects()]

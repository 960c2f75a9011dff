"""JSON Schemas of custom resources, derived from the CRDs the pinned charts install.

A custom resource is checked against the `openAPIV3Schema` of the CRD version it names,
taken from the chart that installs that CRD at its pinned version, so the schemas follow
the pins. The conversion is the one kubeconform's openapi2jsonschema makes in strict
mode, for the same reason: the API server prunes fields a structural schema does not
declare, silently, so an unknown field is an error here.

* `additionalProperties: false` on every object schema that declares `properties` and
  is not `x-kubernetes-preserve-unknown-fields`;
* `nullable: true` also admits `null`;
* `x-kubernetes-int-or-string` admits an integer or a string;
* `apiVersion` and `kind` admit only the resource's own; `metadata` stays an object.

Only CRDs are read; nothing here knows which charts exist (`tools.releases` does).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

Gvk = tuple[str, str, str]
"""(group, version, kind)."""


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def resource_schema(crd: Mapping[str, Any], version: Mapping[str, Any]) -> dict[str, Any]:
    """The strict JSON Schema of one served version of a CRD."""
    spec = crd["spec"]
    openapi = copy.deepcopy((version.get("schema") or {}).get("openAPIV3Schema") or {})
    openapi.setdefault("type", "object")
    properties = openapi.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string", "enum": [f"{spec['group']}/{version['name']}"]}
    properties["kind"] = {"type": "string", "enum": [spec["names"]["kind"]]}
    properties["metadata"] = {"type": "object"}
    schema: dict[str, Any] = _strict(openapi)
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    schema["$comment"] = f"from CRD {crd['metadata']['name']}, version {version['name']}"
    return schema


def schemas_from_crds(crds: Iterable[Mapping[str, Any]]) -> dict[Gvk, dict[str, Any]]:
    """Every served version of every CRD, keyed by (group, version, kind)."""
    found: dict[Gvk, dict[str, Any]] = {}
    for crd in crds:
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec.get("versions") or []:
            if version.get("served", True):
                key = (spec["group"], version["name"], spec["names"]["kind"])
                found[key] = resource_schema(crd, version)
    return found


def gvk_of(body: Mapping[str, Any]) -> Gvk:
    """(group, version, kind) of an object."""
    api_version = str(body.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    return group, version, str(body.get("kind", ""))

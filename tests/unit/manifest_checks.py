"""Schema checks of recorded Kubernetes objects, for component tests under the mocks.

Custom resources are validated against the CRD JSON schemas under `../shared/schemas/crds`
(as tests/artifacts/test_render.py does for the render), core objects with
kubernetes-validate in strict mode. Secret payloads are recorded as "[secret]"; they are
replaced by a one-key placeholder map before validation: the schema checks the object's
structure, never the secret's content.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate

from components import versions
from tests.support import ROOT, SCHEMAS
from tools.mock_engine import SECRET, RecordedResource

CORE_PREFIXES = ("kubernetes:core/", "kubernetes:apps/", "kubernetes:policy/")


def manifest(resource: RecordedResource) -> dict[str, Any]:
    """The Kubernetes object a recorded resource applies (secret payloads as placeholders)."""
    body = {k: v for k, v in resource.inputs.items() if k != "__defaults"}
    for key in ("data", "stringData"):
        if body.get(key) == SECRET:
            body[key] = {"redacted": "x"}
    return body


def schema_file(api_version: str, kind: str) -> Path:
    """Where the CRD schema of a kind lives (`<group>/<kind>_<version>.json`)."""
    group, version = api_version.split("/")
    shared = SCHEMAS / "crds" / group / f"{kind.lower()}_{version}.json"
    if shared.exists():
        return shared
    # CRDs the shared catalogue lacks, converted from their pinned charts.
    return ROOT / "tests" / "fixtures" / "crds" / group / f"{kind.lower()}_{version}.json"


@cache
def _schema(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def validate_against_crd(body: dict[str, Any], where: str) -> None:
    """Raise jsonschema.ValidationError when `body` does not match its CRD schema.

    The schema itself is not checked against JSON Schema's metaschema: CRDs carry Go
    regular expressions (the PrometheusRule's `^(?i)(abort|warn)?$`) that Python's `re`
    rejects as a pattern although the API server accepts them.
    """
    import jsonschema

    path = schema_file(body["apiVersion"], body["kind"])
    assert path.exists(), f"{where}: no schema {path}"
    schema = _schema(path)
    jsonschema.validators.validator_for(schema)(schema).validate(body)


def validate_custom_resource(resource: RecordedResource) -> None:
    """Raise jsonschema.ValidationError when the object does not match its CRD schema."""
    validate_against_crd(manifest(resource), resource.name)


def validate_core(resource: RecordedResource) -> None:
    """Raise kubernetes_validate.ValidationError on an invalid core object (strict)."""
    kubernetes_validate.validate(
        manifest(resource), f"{versions.KUBERNETES_VERSION}.0", strict=True
    )


def schemas_present() -> bool:
    """Whether the shared CRD schemas exist on this machine."""
    return (SCHEMAS / "crds").is_dir()

"""Schema checks of recorded Kubernetes objects, for component tests under the mocks.

Custom resources are validated against strict schemas derived from the CRDs the pinned
charts install (`tests.support.crd_schemas`, as tests/artifacts/test_render.py does for
the render), core objects with kubernetes-validate in strict mode. Secret payloads are recorded as "[secret]"; they are
replaced by a one-key placeholder map before validation: the schema checks the object's
structure, never the secret's content.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from components import versions
from tests.support import crd_schemas
from tools.crd_schemas import gvk_of
from tools.mock_engine import SECRET, RecordedResource

CORE_PREFIXES = ("kubernetes:core/", "kubernetes:apps/", "kubernetes:policy/")


def manifest(resource: RecordedResource) -> dict[str, Any]:
    """The Kubernetes object a recorded resource applies (secret payloads as placeholders)."""
    body = {k: v for k, v in resource.inputs.items() if k != "__defaults"}
    for key in ("data", "stringData"):
        if body.get(key) == SECRET:
            body[key] = {"redacted": "x"}
    return body


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The strict schema of a custom resource kind, None when no pinned chart installs it."""
    return crd_schemas().get(gvk_of({"apiVersion": api_version, "kind": kind}))


def validate_against_crd(body: dict[str, Any], where: str) -> None:
    """Raise jsonschema.ValidationError when `body` does not match its CRD schema.

    The schema itself is not checked against JSON Schema's metaschema: CRDs carry Go
    regular expressions (the PrometheusRule's `^(?i)(abort|warn)?$`) that Python's `re`
    rejects as a pattern although the API server accepts them.
    """
    import jsonschema

    schema = crd_schema(body["apiVersion"], body["kind"])
    assert schema is not None, (
        f"{where}: no pinned chart installs {body['apiVersion']} {body['kind']}"
    )
    jsonschema.validators.validator_for(schema)(schema).validate(body)


def validate_custom_resource(resource: RecordedResource) -> None:
    """Raise jsonschema.ValidationError when the object does not match its CRD schema."""
    validate_against_crd(manifest(resource), resource.name)


def validate_core(resource: RecordedResource) -> None:
    """Raise kubernetes_validate.ValidationError on an invalid core object (strict)."""
    kubernetes_validate.validate(
        manifest(resource), f"{versions.KUBERNETES_VERSION}.0", strict=True
    )

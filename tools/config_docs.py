"""Generate the config reference (Markdown) and JSON Schema from the pydantic models.

    python -m tools.config_docs            # Markdown to stdout
    python -m tools.config_docs --schema   # JSON Schema to stdout

The committed `docs/config-reference.md` and `docs/config.schema.json` are checked
against this output by the tests, so the reference never drifts from the models.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from collections.abc import Iterator
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config import PlatformConfig
from components.outputs import outputs_schema


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin is dict:
        return f"map of {_type_name(args[0])} → {_type_name(args[1])}"
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(f"`{m.value}`" for m in annotation)
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    factory = field.default_factory
    value = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "(see below)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, tuple):
        value = [str(v) for v in value]
    text = json.dumps(value, default=str)
    return f"`{text}`"


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        found += _nested_models(arg)
    return found


def _models_by_path(
    root: type[BaseModel] = PlatformConfig,
) -> Iterator[tuple[str, type[BaseModel]]]:
    """Each model reachable from the stack config once, with the first key path leading to
    it, in the order the stack file reads."""
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", root)]
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        yield path, model
        for name, field in model.model_fields.items():
            for nested in _nested_models(field.annotation):
                child = name if path == "(top level)" else f"{path}.{name}"
                if typing.get_origin(field.annotation) is dict:
                    child += ".<name>"
                queue.append((child, nested))


def undescribed_fields(root: type[BaseModel] = PlatformConfig) -> list[str]:
    """Keys of the stack config whose model gives no description (the reference would
    leave their meaning blank)."""
    return [
        name if path == "(top level)" else f"{path}.{name}"
        for path, model in _models_by_path(root)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]


def reference_markdown() -> str:
    """The config reference: one table per model, in the order the stack file reads."""
    lines = [
        "# Config reference",
        "",
        "Generated from `components/config/` by `make config-docs`; do not edit by hand.",
        "Each top-level key is set in `Pulumi.<stack>.yaml` as `llm-platform:<key>`.",
        "",
    ]
    for path, model in _models_by_path():
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        lines += [f"## `{path}` — {model.__name__}", "", doc, ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            description = (field.description or "").replace("\n", " ").replace("|", "\\|")
            type_text = _type_name(field.annotation).replace("|", "\\|")
            lines.append(f"| `{name}` | {type_text} | {_default(field)} | {description} |")
        lines.append("")
    return "\n".join(lines)


def json_schema() -> str:
    """JSON Schema of the whole stack config, for editors."""
    schema = PlatformConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "llm-platform stack config (values under `llm-platform:`)"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = sys.argv[1:] if argv is None else argv
    if "--outputs-schema" in args:
        sys.stdout.write(json.dumps(outputs_schema(), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(json_schema() if "--schema" in args else reference_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())

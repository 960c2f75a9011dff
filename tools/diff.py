"""Markdown diff of two offline renders, for a pull-request comment.

    python -m tools.diff OLD_DIR NEW_DIR

Compares the resources of `plan.json` by URN (added, removed, changed with the changed
fields as dotted paths), the objects each Helm release creates (`charts/`, the same way:
a values change shows as the Deployment fields it changes, as helm-diff would show it)
and the generated files under `files/`. Exit 0 always when both
renders can be read (a diff is information, not a failure); 1 when one cannot.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

MAX_VALUE_CHARS = 80
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_FILE_DIFF_LINES = 40


def _load_plan(render_dir: Path) -> dict[str, dict[str, Any]]:
    plan = json.loads((render_dir / "plan.json").read_text())
    return {r["urn"]: r for r in plan["resources"]}


def changed_paths(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every leaf that differs between two JSON values, as (dotted path, old, new)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                yield sub, None, new[key]
            elif key not in new:
                yield sub, old[key], None
            else:
                yield from changed_paths(old[key], new[key], sub)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changed_paths(a, b, f"{path}[{index}]")
    elif old != new:
        yield path, old, new


def _short(value: Any) -> str:
    text = "(absent)" if value is None else json.dumps(value, sort_keys=True)
    text = text.replace("|", "\\|")
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _label(resource: dict[str, Any]) -> str:
    return f"`{resource['type']}` `{resource['name']}`"


def _files(render_dir: Path) -> dict[str, str]:
    base = render_dir / "files"
    if not base.exists():
        return {}
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


def _chart_texts(render_dir: Path) -> dict[str, str]:
    base = render_dir / "charts"
    if not base.exists():
        return {}
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*.yaml"))}


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a safe loader)


def _chart_lines(old_dir: Path, new_dir: Path) -> tuple[str, list[str]]:
    """The count sentence and the section of what the Helm releases create.

    Only files whose text differs are parsed (the CRDs alone are megabytes)."""
    old, new = _chart_texts(old_dir), _chart_texts(new_dir)
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    differing = sorted(p for p in set(old) & set(new) if old[p] != new[p])
    changed = [(p, list(changed_paths(_load(old[p]), _load(new[p])))) for p in differing]
    changed = [(p, fields) for p, fields in changed if fields]
    count = (
        f"Chart objects: {len(added)} to add, {len(changed)} to change, {len(removed)} to remove."
    )
    if not (added or removed or changed):
        return count, []
    lines = ["", "### Chart objects (`charts/<release>/`)", ""]
    lines += [f"- added `{p}`" for p in added]
    lines += [f"- removed `{p}`" for p in removed]
    for path, fields in changed:
        lines += ["", f"#### `{path}`", "", "| field | old | new |", "| --- | --- | --- |"]
        lines += [f"| `{f}` | {_short(a)} | {_short(b)} |" for f, a, b in fields]
    return count, lines


def diff_markdown(old_dir: Path, new_dir: Path) -> str:
    """The whole Markdown report."""
    old, new = _load_plan(old_dir), _load_plan(new_dir)
    added = [new[u] for u in sorted(set(new) - set(old))]
    removed = [old[u] for u in sorted(set(old) - set(new))]
    changed: list[tuple[dict[str, Any], list[tuple[str, Any, Any]]]] = []
    for urn in sorted(set(old) & set(new)):
        before = {k: v for k, v in old[urn].items() if k != "urn"}
        after = {k: v for k, v in new[urn].items() if k != "urn"}
        fields = list(changed_paths(before, after))
        if fields:
            changed.append((new[urn], fields))
    old_files, new_files = _files(old_dir), _files(new_dir)
    changed_files = sorted(
        p for p in set(old_files) | set(new_files) if old_files.get(p) != new_files.get(p)
    )

    chart_count, chart_section = _chart_lines(old_dir, new_dir)
    lines = ["## Offline render diff", ""]
    if not (added or removed or changed or changed_files or chart_section):
        return "\n".join([*lines, "No changes.", ""])
    lines.append(
        f"{len(added)} to add, {len(changed)} to change, {len(removed)} to remove, "
        f"{len(changed_files)} generated files changed. {chart_count}"
    )
    if added:
        lines += ["", "### Added", ""] + [f"- {_label(r)}" for r in added]
    if removed:
        lines += ["", "### Removed", ""] + [f"- {_label(r)}" for r in removed]
    if changed:
        lines += ["", "### Changed", ""]
        for resource, fields in changed:
            lines += [
                f"#### {_label(resource)}",
                "",
                "| field | old | new |",
                "| --- | --- | --- |",
            ]
            lines += [f"| `{p}` | {_short(a)} | {_short(b)} |" for p, a, b in fields]
            lines.append("")
    lines += chart_section
    if changed_files:
        lines += ["", "### Generated files", ""]
        for path in changed_files:
            diff = list(
                difflib.unified_diff(
                    old_files.get(path, "").splitlines(),
                    new_files.get(path, "").splitlines(),
                    f"old/{path}",
                    f"new/{path}",
                    lineterm="",
                )
            )
            shown = diff[:MAX_FILE_DIFF_LINES]
            if len(diff) > len(shown):
                shown.append(f"... {len(diff) - len(shown)} more lines")
            lines += [f"<details><summary><code>{path}</code></summary>", "", "```diff"]
            lines += [*shown, "```", "", "</details>", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m tools.diff OLD_DIR NEW_DIR", file=sys.stderr)
        return 1
    try:
        print(diff_markdown(Path(args[0]), Path(args[1])), end="")
    except (OSError, ValueError, KeyError) as error:
        print(f"diff error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

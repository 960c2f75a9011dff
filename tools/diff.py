"""Markdown diff of two offline renders, for a pull-request comment.

    python -m tools.diff OLD_DIR NEW_DIR [--config Pulumi.<stack>.yaml] [--no-preview]

Opens with the risk: the replacements a real `pulumi up` of NEW's program would make
starting from OLD's state (an offline preview, `tools.preview`, of the stack NEW was
rendered from), those that delete the old resource first at the top, and the values the
program derived that changed, with their cause (`components.derived`). Then compares the
resources of `plan.json` by URN (added, removed, changed with the changed fields as dotted
paths; encoded text such as base64 and gzip user-data decoded and shown as a text diff,
multi-line text too), the objects each Helm release creates (`charts/`, the same way: a
values change shows as the Deployment fields it changes, as helm-diff would show it) and
the generated files under `files/`. Exit 0 whenever both renders can be read (a diff is
information, not a failure); 1 when one cannot; 2 when the preview's stack file is invalid.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import difflib
import gzip
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigError
from tools.mock_engine import ProgramRun
from tools.preview import counts_line, deleted_first, preview, replacement_lines
from tools.render import ROOT
from tools.replacements import changed_paths, entry_changes, load_plan

MAX_VALUE_CHARS = 80
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_FILE_DIFF_LINES = 40
MIN_ENCODED_CHARS = 24


def _short(value: Any) -> str:
    text = "(absent)" if value is None else json.dumps(value, sort_keys=True)
    text = text.replace("|", "\\|")
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _label(resource: dict[str, Any]) -> str:
    return f"`{resource['type']}` `{resource['name']}`"


def decoded_text(value: Any) -> tuple[str, str] | None:
    """(how it was encoded, the text) of a value that is base64 (of gzip) text; else None."""
    if not isinstance(value, str) or len(value) < MIN_ENCODED_CHARS or "\n" in value.strip():
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    how = "base64"
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return None
        how = "base64 of gzip"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not all(c.isprintable() or c in "\n\r\t" for c in text):
        return None
    return how, text


def _text_of(value: Any) -> tuple[str, str] | None:
    """A changed value worth a text diff: encoded text decoded, or multi-line text."""
    decoded = decoded_text(value)
    if decoded is not None:
        return decoded
    if isinstance(value, str) and "\n" in value:
        return "text", value
    return None


def _unified(old: str, new: str, name: str) -> list[str]:
    diff = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"old/{name}", f"new/{name}", lineterm=""
        )
    )
    shown = diff[:MAX_FILE_DIFF_LINES]
    if len(diff) > len(shown):
        shown.append(f"... {len(diff) - len(shown)} more lines")
    return shown


def _details(summary: str, diff: list[str]) -> list[str]:
    return [f"<details><summary>{summary}</summary>", "", "```diff", *diff, "```", "", "</details>"]


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


def _derived(render_dir: Path) -> dict[str, dict[str, Any]]:
    path = render_dir / "derived.json"
    if not path.exists():
        return {}
    return {d["subject"]: d for d in json.loads(path.read_text())}


def _derived_changes(
    old_dir: Path, new_dir: Path
) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """(subject, old entry, new entry) of every derived value that changed."""
    old, new = _derived(old_dir), _derived(new_dir)

    def told(entry: dict[str, Any] | None) -> tuple[Any, Any]:
        return (entry or {}).get("value"), (entry or {}).get("cause")

    return [
        (subject, old.get(subject), new.get(subject))
        for subject in sorted(set(old) | set(new))
        if told(old.get(subject)) != told(new.get(subject))
    ]


def _before_after(old: dict[str, Any] | None, new: dict[str, Any] | None) -> tuple[Any, Any]:
    """The values a stack ran and runs with for a derived subject: the derived one, or
    (not derived on that side) the configured one the other side records."""
    before = old["value"] if old is not None else (new or {}).get("configured")
    after = new["value"] if new is not None else (old or {}).get("configured")
    return before, after


def _derived_lines(
    changes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
) -> list[str]:
    lines = ["", "### Derived by the program", ""]
    for subject, old, new in changes:
        before, after = _before_after(old, new)
        if new is not None:
            lines.append(
                f"- {subject}: {_short(before)} -> {_short(after)} "
                f"(config says {_short(new['configured'])}). Because: {new['cause']}"
            )
        else:
            assert old is not None
            lines.append(
                f"- {subject}: {_short(before)} -> {_short(after)}, as config "
                f"says: no longer derived (was: {old['cause']})"
            )
    return lines


def _explained_by(
    a: Any, b: Any, changes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]
) -> str | None:
    """The derived subject a changed field follows (old and new value both match), if any."""
    for subject, old, new in changes:
        before, after = _before_after(old, new)
        if _matches(a, before) and _matches(b, after):
            return subject
    return None


def _matches(field_value: Any, derived: Any) -> bool:
    if derived is None or field_value is None:
        return False
    if isinstance(field_value, int | float) and isinstance(derived, int | float):
        return float(field_value) == float(derived)
    if isinstance(field_value, str):
        return str(derived) in field_value.split("=")[-1].split()
    return False


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


def _risk_lines(run: ProgramRun | None, note: str | None) -> list[str]:
    """The top of the report: what a real `pulumi up` would replace."""
    if run is None:
        return [f"_No offline preview: {note or 'not asked for'}._", ""]
    replacements = replacement_lines(run)
    lines = [f"Offline preview from the old render's state: {counts_line(run)}", ""]
    if replacements:
        first = deleted_first(run)
        if first:
            names = ", ".join(f"`{r.name}`" for r in first[:10])
            lines += [f"**Deleted before it is replaced (down in between): {names}.**", ""]
        lines += ["**Replaced by a real `pulumi up`:**", "", *replacements, ""]
    else:
        lines += ["No resource is replaced.", ""]
    return lines


def diff_markdown(
    old_dir: Path, new_dir: Path, preview_run: ProgramRun | None = None, note: str | None = None
) -> str:
    """The whole Markdown report; `preview_run` is the preview run of NEW's stack from OLD's
    state (`note` says why there is none)."""
    old, new = load_plan(old_dir), load_plan(new_dir)
    added = [new[u] for u in sorted(set(new) - set(old))]
    removed = [old[u] for u in sorted(set(old) - set(new))]
    changed: list[tuple[dict[str, Any], list[tuple[str, Any, Any]]]] = []
    for urn in sorted(set(old) & set(new)):
        fields = entry_changes(old[urn], new[urn])
        if fields:
            changed.append((new[urn], fields))
    old_files, new_files = _files(old_dir), _files(new_dir)
    changed_files = sorted(
        p for p in set(old_files) | set(new_files) if old_files.get(p) != new_files.get(p)
    )
    derived = _derived_changes(old_dir, new_dir)

    chart_count, chart_section = _chart_lines(old_dir, new_dir)
    lines = ["## Offline render diff", ""]
    if not (added or removed or changed or changed_files or chart_section or derived):
        return "\n".join([*lines, "No changes.", ""])
    lines += _risk_lines(preview_run, note)
    lines.append(
        f"{len(added)} to add, {len(changed)} to change, {len(removed)} to remove, "
        f"{len(changed_files)} generated files changed. {chart_count}"
    )
    if derived:
        lines += _derived_lines(derived)
    if added:
        lines += ["", "### Added", ""] + [f"- {_label(r)}" for r in added]
    if removed:
        lines += ["", "### Removed", ""] + [f"- {_label(r)}" for r in removed]
    if changed:
        lines += ["", "### Changed", ""]
        for resource, fields in changed:
            lines += _changed_resource(resource, fields, derived)
    lines += chart_section
    if changed_files:
        lines += ["", "### Generated files", ""]
        for path in changed_files:
            diff = _unified(old_files.get(path, ""), new_files.get(path, ""), path)
            lines += [*_details(f"<code>{path}</code>", diff), ""]
    return "\n".join(lines) + "\n"


def _changed_resource(
    resource: dict[str, Any],
    fields: list[tuple[str, Any, Any]],
    derived: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
) -> list[str]:
    """A changed resource: a table of the changed fields, a text diff of each text field."""
    rows, texts = [], []
    for path, a, b in fields:
        old_text, new_text = _text_of(a), _text_of(b)
        if old_text is not None or new_text is not None:
            how = (new_text or old_text or ("text", ""))[0]
            texts.append((path, how, (old_text or ("", ""))[1], (new_text or ("", ""))[1]))
            continue
        why = _explained_by(a, b, derived)
        note = f" (derived: {why})" if why else ""
        rows.append(f"| `{path}` | {_short(a)} | {_short(b)}{note} |")
    lines = [f"#### {_label(resource)}", ""]
    if rows:
        lines += ["| field | old | new |", "| --- | --- | --- |", *rows, ""]
    for path, how, before, after in texts:
        summary = f"<code>{path}</code>" + (f" ({how}, decoded)" if how != "text" else "")
        lines += [*_details(summary, _unified(before, after, path)), ""]
    return lines


def _stack_file(new_dir: Path, config: Path | None) -> tuple[str, Path | None]:
    """The stack NEW was rendered from and the stack file to preview it with."""
    stack = str(json.loads((new_dir / "plan.json").read_text())["stack"])
    if config is not None:
        return stack, config
    path = ROOT / f"Pulumi.{stack}.yaml"
    return stack, path if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument(
        "--config", type=Path, help="NEW's stack file (default Pulumi.<stack>.yaml)"
    )
    parser.add_argument("--no-preview", action="store_true", help="leave out the offline preview")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        preview_run, note = None, "left out (--no-preview)"
        if not args.no_preview:
            stack, stack_file = _stack_file(args.new, args.config)
            if stack_file is None:
                note = f"no stack file Pulumi.{stack}.yaml (pass --config)"
            else:
                print(f"diff: previewing stack {stack} from {args.old}", file=sys.stderr)
                preview_run = preview(stack, stack_file, args.old)
        print(diff_markdown(args.old, args.new, preview_run, note), end="")
    except ConfigError as error:
        print("\n".join(error.lines), file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as error:
        print(f"diff error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Offline preview: what a real `pulumi preview` of a stack would plan, without the CLI.

    python -m tools.preview --stack prod [--config Pulumi.prod.yaml] [--against build/prod]

Runs `__main__.py` under the mock engine as a preview (`tools.mock_engine`): against the
state of an earlier render (`--against`, e.g. the render of the pull request's base) every
resource is planned as the providers would plan it (`tools.replacements`), and values that
only exist once `pulumi up` has run are unknown, as the real preview shows them. Without
`--against` the stack does not exist yet: everything is created. Prints Markdown: the
counts, every replacement (with those that delete first), deletions, updates, and what is
known only after `pulumi up`. Exit codes as the render's: 0, 2 on invalid config, 1 else.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from components.config import ConfigError
from tools.mock_engine import ProgramRun, RecordedResource
from tools.render import ROOT, RenderError, run_stack_program, stack_program
from tools.replacements import UNKNOWN, is_unknown, load_plan

MAX_LISTED = 40


def preview(stack: str, stack_file: Path, against: Path | None = None) -> ProgramRun:
    """The preview run of a stack file against a render's state (none: a new stack)."""
    prior = load_plan(against) if against is not None else {}
    return run_stack_program(stack, stack_program(stack, stack_file), prior)


def _label(resource: RecordedResource) -> str:
    return f"`{resource.type}` `{resource.name}`"


def _planned(run: ProgramRun, op: str) -> list[RecordedResource]:
    return [r for r in run.resources if r.custom and r.step is not None and r.step.op == op]


def deleted_first(run: ProgramRun) -> list[RecordedResource]:
    """The replacements that delete the old resource before creating the new one."""
    return [r for r in _planned(run, "replace") if r.step and r.step.delete_before_replace]


def counts_line(run: ProgramRun) -> str:
    """`N to create, N to update, N to replace (K deleted first), N to delete, N unchanged.`"""
    ops = Counter(r.step.op for r in run.resources if r.custom and r.step is not None)
    return (
        f"{ops['create']} to create, {ops['update']} to update, {ops['replace']} to replace "
        f"({len(deleted_first(run))} deleted first), {len(run.deleted)} to delete, "
        f"{ops['same']} unchanged."
    )


def replacement_lines(run: ProgramRun) -> list[str]:
    """The replacements as a Markdown table, those that delete first at the top; none: []."""
    replaced = _planned(run, "replace")
    if not replaced:
        return []
    replaced.sort(key=lambda r: (not (r.step and r.step.delete_before_replace), r.type, r.name))
    lines = ["| resource | a real `pulumi up` | because of |", "| --- | --- | --- |"]
    for resource in replaced[:MAX_LISTED]:
        assert resource.step is not None
        how = (
            "**deletes it first**, then creates the new one (down in between)"
            if resource.step.delete_before_replace
            else "creates the new one, then deletes the old"
        )
        why = ", ".join(f"`{k}`" for k in resource.step.replace_keys)
        lines.append(f"| {_label(resource)} | {how} | {why} |")
    if len(replaced) > MAX_LISTED:
        lines.append(f"| ... {len(replaced) - MAX_LISTED} more | | |")
    return lines


def unknown_inputs(resource: RecordedResource) -> list[str]:
    """Top-level inputs of a resource whose value the preview does not know."""
    return sorted(k for k, v in resource.inputs.items() if is_unknown(v))


def preview_markdown(stack: str, run: ProgramRun, against: Path | None) -> str:
    """The whole report of a preview run."""
    where = f"against `{against}`" if against else "as a new stack (nothing exists yet)"
    lines = [f"## Offline preview of stack `{stack}` {where}", "", counts_line(run)]
    replacements = replacement_lines(run)
    if replacements:
        lines += ["", "### Replaced", "", *replacements]
    if run.deleted:
        lines += ["", "### Deleted", ""] + [f"- `{urn}`" for urn in run.deleted[:MAX_LISTED]]
    updated = _planned(run, "update")
    if updated and against is not None:
        lines += ["", "### Updated in place", ""]
        for resource in updated[:MAX_LISTED]:
            assert resource.step is not None
            paths = ", ".join(f"`{p}`" for p in resource.step.changed[:6])
            more = len(resource.step.changed) - 6
            lines.append(
                f"- {_label(resource)}: {paths}" + (f" and {more} more" if more > 0 else "")
            )
    unknown = [(r, unknown_inputs(r)) for r in run.resources if r.custom]
    unknown = [(r, keys) for r, keys in unknown if keys]
    if unknown:
        lines += [
            "",
            f"### Known only after `pulumi up` ({len(unknown)} resources)",
            "",
            f"Inputs that flow from resources not created (or recreated) yet show as "
            f'`"{UNKNOWN}"`, as the real preview shows `output<string>`.',
            "",
        ]
        lines += [
            f"- {_label(r)}: " + ", ".join(f"`{k}`" for k in keys)
            for r, keys in unknown[:MAX_LISTED]
        ]
        if len(unknown) > MAX_LISTED:
            lines.append(f"- ... {len(unknown) - MAX_LISTED} more")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (default dev)")
    parser.add_argument("--config", type=Path, help="stack file (default Pulumi.<stack>.yaml)")
    parser.add_argument("--against", type=Path, help="a render whose state the preview starts from")
    args = parser.parse_args(argv)
    stack_file = args.config or ROOT / f"Pulumi.{args.stack}.yaml"
    try:
        run = preview(args.stack, stack_file, args.against)
    except ConfigError as error:
        print("\n".join(error.lines), file=sys.stderr)
        return 2
    except (RenderError, OSError, KeyError, ValueError) as error:
        print(f"preview error: {error}", file=sys.stderr)
        return 1
    print(preview_markdown(args.stack, run, args.against), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

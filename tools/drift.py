"""Drift of a deployed stack, summarised: what `pulumi up` would change to undo it.

    python -m tools.drift --stack prod --preview preview.json [--status N]
    python -m tools.drift --stack prod OLD_RENDER NEW_RENDER
    ... [--post-issue --repo owner/name]

The scheduled `drift` workflow runs `pulumi preview --refresh --expect-no-changes --json`
(with the stack's policy pack config): the engine reads every resource back from the
cloud and the cluster, then plans what the program would change. `--preview` reads that
JSON document (the engine's `PreviewDigest`, sdk/go/common/display/json.go) and `--status`
the CLI's exit status. Two offline renders (`plan.json`) give the same summary of what
differs between them, e.g. the render of the commit the stack was last deployed from
against the render of `main`, with replacements told from updates by the offline
preview's rules (`tools.replacements`).

A step is drift when its operation changes something: everything but `same`, `read`,
`discard` and `read-replacement` (the operations Pulumi's `ResourceChanges.HasChanges`
skips, the one `--expect-no-changes` reads) and `refresh`, which is the read itself: what
it finds shows as the update, replacement, creation or deletion planned after it. Only
property names are printed, never values (the preview blanks secrets, but a value can
still carry more than it should).

Exit status: 0 no drift, 1 drift, 2 when the check itself failed (an unreadable input, or
a preview that failed without planning anything). `--post-issue` keeps one issue per
stack (found by a hidden marker): opened or updated while the stack drifts, closed with a
comment once it no longer does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import forge
from tools.forge import RestApi
from tools.mock_engine import ROOT_STACK_TYPE
from tools.replacements import comparable_entry, entry_changes, load_plan, plan_step

NOT_CHANGES = frozenset({"same", "read", "discard", "read-replacement", "refresh"})
MAX_LISTED = 60
MAX_PATHS = 8
MAX_MESSAGE = 300
DOCS = "docs/delivery.md#drift-detection"


@dataclass(frozen=True)
class Change:
    """One resource `pulumi up` would change: its URN, operation and changed properties."""

    urn: str
    op: str
    paths: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        """The resource type (the last of the URN's qualified type)."""
        return self.urn.split("::")[2].rsplit("$", 1)[-1] if self.urn.count("::") >= 3 else "?"

    @property
    def name(self) -> str:
        """The resource's logical name."""
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class Drift:
    """What a check found: the changes, the errors it reported, and whether it completed."""

    changes: tuple[Change, ...]
    errors: tuple[str, ...] = ()
    failed: bool = False
    source: str = ""

    @property
    def drifted(self) -> bool:
        """Whether `pulumi up` would change anything."""
        return bool(self.changes)


class DriftInputError(Exception):
    """An input the summary cannot be made from."""


def _step_paths(step: dict[str, Any]) -> tuple[str, ...]:
    detailed = step.get("detailedDiff") or {}
    keys = list(detailed) if isinstance(detailed, dict) else []
    keys = keys or list(step.get("diffReasons") or []) or list(step.get("replaceReasons") or [])
    return tuple(sorted(str(k) for k in keys))


def from_preview(document: Any, *, status: int = 0) -> Drift:
    """The drift a `pulumi preview --json` document shows; `status` is the CLI's exit code."""
    if not isinstance(document, dict):
        raise DriftInputError("the preview output is not a JSON object")
    changes = []
    for step in document.get("steps") or []:
        if not isinstance(step, dict) or not isinstance(step.get("urn"), str):
            raise DriftInputError("a preview step without a URN")
        op = str(step.get("op", ""))
        change = Change(urn=step["urn"], op=op, paths=_step_paths(step))
        if op not in NOT_CHANGES and change.type != ROOT_STACK_TYPE:
            changes.append(change)
    errors = tuple(
        _one_line(str(d.get("message", "")))
        for d in document.get("diagnostics") or []
        if isinstance(d, dict) and d.get("severity") == "error"
    )
    failed = status != 0 and not changes
    return Drift(tuple(changes), errors, failed, "pulumi preview --refresh")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def _plan(render: Path) -> dict[str, dict[str, Any]]:
    try:
        return load_plan(render)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DriftInputError(f"{render}: not a render ({error})") from None


def _replaces(urn: str, old: dict[str, Any], new: dict[str, Any], replaced: set[str]) -> bool:
    """Whether a real preview would replace the resource: the same rules as the offline
    preview (`tools.replacements.plan_step`), on the inputs with their secret digests."""
    step = plan_step(
        new["type"],
        comparable_entry(old),
        comparable_entry(new),
        custom=bool(new.get("custom", True)),
        provider_replaced=_provider_urn(new) in replaced,
        ignore_changes=list(new.get("ignoreChanges") or ()),
        delete_before_replace=bool(new.get("deleteBeforeReplace")),
    )
    return step.op == "replace"


def from_renders(deployed: Path, program: Path) -> Drift:
    """What differs between two renders, as the steps that would bring `deployed` to
    `program`: created, deleted, replaced (by the offline preview's rules) or updated, with
    the inputs that differ."""
    old, new = _plan(deployed), _plan(program)
    changes = [Change(urn, "create") for urn in sorted(set(new) - set(old))]
    changes += [Change(urn, "delete") for urn in sorted(set(old) - set(new))]
    replaced: set[str] = set()
    # Providers first: a replaced provider replaces what it manages.
    common = sorted(set(old) & set(new), key=lambda u: (not _is_provider(new[u]), u))
    for urn in common:
        paths = tuple(path for path, _, _ in entry_changes(old[urn], new[urn]))
        if not paths and _provider_urn(new[urn]) in replaced:
            paths = ("provider",)
        if not paths:
            continue
        if _replaces(urn, old[urn], new[urn], replaced):
            replaced.add(urn)
            changes.append(Change(urn, "replace", paths))
        else:
            changes.append(Change(urn, "update", paths))
    return Drift(tuple(c for c in changes if c.type != ROOT_STACK_TYPE), source="two renders")


def _provider_urn(resource: dict[str, Any]) -> str:
    """The URN of the resource's explicit provider (a reference may end `::<id>`)."""
    return "::".join(str(resource.get("provider") or "").split("::")[:4])


def _is_provider(resource: dict[str, Any]) -> bool:
    return str(resource.get("type", "")).startswith("pulumi:providers:")


def marker(stack: str) -> str:
    """The hidden marker of a stack's drift issue."""
    return f"<!-- llm-platform:drift:{stack} -->"


def _paths_cell(paths: Sequence[str]) -> str:
    if not paths:
        return ""
    shown = ", ".join(f"`{p}`" for p in paths[:MAX_PATHS])
    more = len(paths) - MAX_PATHS
    return shown + (f" and {more} more" if more > 0 else "")


def _counts(changes: Iterable[Change]) -> str:
    ops = Counter(c.op for c in changes)
    return ", ".join(f"{count} to {op}" for op, count in sorted(ops.items()))


def summary_markdown(stack: str, drift: Drift) -> str:
    """The summary the workflow posts and `make drift` prints."""
    lines = [marker(stack), f"## Drift of stack `{stack}`", ""]
    if drift.failed:
        lines.append(
            f"**The check failed** ({drift.source}) before it could plan anything: "
            "the stack's drift is unknown. The run's log has the whole output."
        )
    elif drift.drifted:
        lines.append(
            f"**Drifted**: `pulumi up` would change {len(drift.changes)} resources "
            f"({_counts(drift.changes)}), from {drift.source}."
        )
    else:
        lines.append(f"No drift: the stack matches its program ({drift.source}).")
    if drift.changes:
        lines += ["", "| resource | type | `pulumi up` would | properties |"]
        lines.append("| --- | --- | --- | --- |")
        for change in drift.changes[:MAX_LISTED]:
            lines.append(
                f"| `{change.name}` | `{change.type}` | {change.op} | {_paths_cell(change.paths)} |"
            )
        if len(drift.changes) > MAX_LISTED:
            lines.append(f"| ... {len(drift.changes) - MAX_LISTED} more | | | |")
    if drift.errors:
        lines += ["", "### Errors", ""] + [f"- {e}" for e in drift.errors[:MAX_LISTED]]
    if drift.drifted or drift.failed:
        lines += ["", f"How to read and resolve it: [{DOCS}]({DOCS})."]
    return "\n".join(lines) + "\n"


def exit_status(drift: Drift) -> int:
    """0 no drift, 1 drift, 2 the check failed."""
    if drift.failed:
        return 2
    return 1 if drift.drifted else 0


class DriftIssue:
    """The one open issue that tracks a stack's drift, through the REST API."""

    def __init__(self, api: RestApi, *, repo: str, stack: str) -> None:
        self.api = api
        self.repo = repo
        self.stack = stack

    def find_open(self) -> int | None:
        """Number of the open issue carrying the stack's marker, if any."""
        for issue in self.api.pages(f"/repos/{self.repo}/issues?state=open"):
            if marker(self.stack) in (issue.get("body") or ""):
                return int(issue["number"])
        return None

    def sync(self, drift: Drift, body: str) -> str:
        """Open or update the issue while drifted, close it when not; says what it did."""
        number = self.find_open()
        if drift.drifted or drift.failed:
            if number is not None:
                self.api.request("PATCH", f"/repos/{self.repo}/issues/{number}", {"body": body})
                return f"updated issue #{number}"
            title = f"Drift in stack {self.stack}"
            created = self.api.request(
                "POST", f"/repos/{self.repo}/issues", {"title": title, "body": body}
            )
            return f"opened issue #{created['number']}"
        if number is None:
            return "no drift, no open issue"
        self.api.request("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": body})
        self.api.request("PATCH", f"/repos/{self.repo}/issues/{number}", {"state": "closed"})
        return f"closed issue #{number}"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack the summary is about")
    parser.add_argument("--preview", type=Path, help="a `pulumi preview --json` output")
    parser.add_argument("--status", type=int, default=0, help="the preview's exit status")
    parser.add_argument("renders", nargs="*", type=Path, help="OLD_RENDER NEW_RENDER")
    parser.add_argument("--post-issue", action="store_true", help="sync the stack's issue")
    parser.add_argument("--repo", help="owner/name, for --post-issue")
    args = parser.parse_args(argv)
    if (args.preview is None) == (len(args.renders) != 2) or len(args.renders) not in (0, 2):
        parser.error("give either --preview FILE or two render directories")
    if args.post_issue and not args.repo:
        parser.error("--post-issue needs --repo")
    try:
        if args.preview is not None:
            try:
                document = json.loads(args.preview.read_text() or "null")
            except (OSError, ValueError) as error:
                raise DriftInputError(f"{args.preview}: not a preview's JSON ({error})") from None
            drift = from_preview(document, status=args.status)
        else:
            drift = from_renders(args.renders[0], args.renders[1])
    except DriftInputError as error:
        print(f"drift: {error}", file=sys.stderr)
        drift = Drift((), failed=True, source=str(error))
        if not args.post_issue:
            return 2
    body = summary_markdown(args.stack, drift)
    print(body, end="")
    if args.post_issue:
        api = forge.from_environment()
        if api is None:
            return 2
        print(DriftIssue(api, repo=args.repo, stack=args.stack).sync(drift, body), file=sys.stderr)
    return exit_status(drift)


if __name__ == "__main__":
    sys.exit(main())

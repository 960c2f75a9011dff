"""Post or update the one pull-request comment holding the render diff and the previews.

    python -m tools.pr_comment --repo owner/name --report pr-report

Reads what `pull-request.yml` left in the report directory (`pr-number`,
`render-diff-<stack>.md`, `preview-<stack>.txt`), and finds the comment by a hidden
marker so each run edits the same comment instead of adding one. Speaks the issue
comments REST API that GitHub and Gitea share; `GITHUB_API_URL` and `GITHUB_TOKEN` come
from the runner. The report is treated as data: the PR number must be an integer and the
body is length-capped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools import forge
from tools.forge import RestApi

MARKER = "<!-- llm-platform:pr-report -->"
MAX_BODY = 60_000
"""GitHub refuses comments over 65,536 characters; leave room for the frame."""


def _fenced(text: str) -> str:
    return "```\n" + text.replace("```", "`\u200b``") + "\n```"


def comment_body(report: Path) -> str:
    """The comment text for a report directory."""
    parts = [MARKER, "## Render diff"]
    diffs = sorted(report.glob("render-diff-*.md"))
    parts += [p.read_text().strip() or f"_{p.stem}: no change_" for p in diffs]
    if not diffs:
        parts.append("_The render diff did not run._")
    previews = sorted(report.glob("preview-*.txt"))
    parts.append("## Preview")
    if previews:
        for preview in previews:
            stack = preview.stem.removeprefix("preview-")
            parts.append(f"<details><summary>pulumi preview: {stack}</summary>\n")
            parts.append(_fenced(preview.read_text().strip()))
            parts.append("</details>")
    else:
        parts.append("_No preview: this pull request has no access to the stacks' secrets._")
    body = "\n\n".join(parts) + "\n"
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n_(truncated; the full report is in the run's artifacts)_\n"
    return body


def pr_number(report: Path) -> int:
    """The pull request number the report belongs to."""
    text = (report / "pr-number").read_text().strip()
    if not text.isdigit():
        raise SystemExit(f"pr-number is not a number: {text[:40]!r}")
    return int(text)


class IssueComments:
    """The comments of one pull request through the REST API."""

    def __init__(self, api: RestApi, *, repo: str, number: int) -> None:
        self.api = api
        self.repo = repo
        self.number = number

    def find_marked(self) -> int | None:
        """Id of the comment carrying the marker, if any."""
        comments = self.api.pages(f"/repos/{self.repo}/issues/{self.number}/comments")
        for comment in comments:
            if MARKER in (comment.get("body") or ""):
                return int(comment["id"])
        return None

    def upsert(self, body: str) -> str:
        """Edit the marked comment or create it; returns `updated` or `created`."""
        existing = self.find_marked()
        if existing is not None:
            self.api.request(
                "PATCH", f"/repos/{self.repo}/issues/comments/{existing}", {"body": body}
            )
            return "updated"
        self.api.request(
            "POST", f"/repos/{self.repo}/issues/{self.number}/comments", {"body": body}
        )
        return "created"


def main(argv: list[str] | None = None) -> int:
    """Post the report of a pull-request run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    api = forge.from_environment()
    if api is None:
        return 2
    comments = IssueComments(api, repo=args.repo, number=pr_number(args.report))
    print(f"comment {comments.upsert(comment_body(args.report))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

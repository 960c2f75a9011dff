"""CI/CD workflows: schema-valid, the jobs and triggers the delivery needs, actions pinned.

`actionlint` is not installable from the registries here (its PyPI wrapper downloads the
binary at build time), so the files are checked against the GitHub workflow JSON schema
that `check-jsonschema` vendors, plus the structural rules below.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from components.runners.values import SCALE_SET_NAMES
from tests.fakes.background import BackgroundServer
from tests.support import ROOT
from tools import pr_comment
from tools.stacks import policy_config_path, stacks

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def _triggers(document: dict[Any, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True.
    triggers: dict[str, Any] = document.get("on", document.get(True))
    return triggers


def _steps(document: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in document["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def test_the_workflows_exist() -> None:
    assert {p.name for p in FILES} == {
        "pull-request.yml",
        "pr-comment.yml",
        "deploy.yml",
        "drift.yml",
    }


def test_workflows_match_the_github_workflow_schema() -> None:
    tool = shutil.which("check-jsonschema") or str(ROOT / ".venv" / "bin" / "check-jsonschema")
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha(path: Path) -> None:
    uses = [step["uses"] for _, step in _steps(_load(path.name)) if "uses" in step]
    assert uses
    assert [u for u in uses if not PINNED.match(u)] == []
    # Each pin says which release it is, for the humans who bump it.
    for line in path.read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), line


GENERAL_RUNNERS = """${{ fromJSON(vars.RUNNER_LABELS || '["self-hosted", "linux", "x64"]') }}"""
CLUSTER_RUNNERS = (
    f"${{{{ fromJSON(vars.DEPLOY_RUNNER_LABELS || '[\"{SCALE_SET_NAMES['amd64']}\"]') }}}}"
)
"""The cluster's own amd64 scale set (components/runners/values.py), overridable while the
cluster has no runners yet."""
CLUSTER_JOBS = {
    "deploy.yml": {"stacks", "up-dev", "up-prod"},
    "drift.yml": {"stacks", "drift"},
    "pull-request.yml": {"stacks", "preview"},
    "pr-comment.yml": set(),
}
"""Jobs that reach the cluster or the stacks' state; the others (the suite, fork PRs' code,
the comment) stay on the general runners and never run in the cluster."""


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_cluster_jobs_run_on_the_clusters_runners_and_fork_code_never_does(path: Path) -> None:
    jobs = _load(path.name)["jobs"]
    for name, job in jobs.items():
        expected = CLUSTER_RUNNERS if name in CLUSTER_JOBS[path.name] else GENERAL_RUNNERS
        assert job["runs-on"] == expected, (path.name, name)
        assert job["timeout-minutes"] <= 90
        if name in CLUSTER_JOBS[path.name]:
            # The runner image brings no Python 3.11; the job sets it up before `make venv`.
            uses = [s.get("uses", "") for s in job["steps"]]
            assert any(u.startswith("actions/setup-python@") for u in uses), (path.name, name)
    assert set(CLUSTER_JOBS[path.name]) <= set(jobs)
    if path.name == "pull-request.yml":
        for name in ("test", "render-diff"):  # run a fork's code
            assert "DEPLOY_RUNNER_LABELS" not in json.dumps(jobs[name])


def test_pull_requests_test_render_diff_and_preview_same_repo_only() -> None:
    document = _load("pull-request.yml")
    assert set(_triggers(document)) == {"pull_request"}
    assert "pull_request_target" not in (WORKFLOWS / "pull-request.yml").read_text()
    jobs = document["jobs"]
    assert {"test", "render-diff", "preview"} <= set(jobs)
    assert any("make test" in s.get("run", "") for s in jobs["test"]["steps"])
    diff_runs = " ".join(s.get("run", "") for s in jobs["render-diff"]["steps"])
    assert "render-all" in diff_runs and "diff OLD=" in diff_runs
    # Fork PRs have no secrets: the jobs they run reference none, and preview is skipped.
    for name in ("test", "render-diff"):
        assert "secrets." not in json.dumps(jobs[name])
    assert (
        jobs["preview"]["if"]
        == "github.event.pull_request.head.repo.full_name == github.repository"
    )
    preview = " ".join(s.get("run", "") for s in jobs["preview"]["steps"])
    assert "pulumi preview" in preview and "--diff" in preview and "--policy-pack policy" in preview
    assert document["permissions"] == {"contents": "read"}


def test_the_comment_is_posted_from_the_base_context_for_fork_prs() -> None:
    document = _load("pr-comment.yml")
    assert _triggers(document)["workflow_run"]["workflows"] == ["pull-request"]
    assert document["permissions"]["pull-requests"] == "write"
    (job,) = document["jobs"].values()
    checkout = next(s for s in job["steps"] if "actions/checkout" in s.get("uses", ""))
    # Never the PR's head: the trusted default branch runs the comment script.
    assert checkout["with"]["ref"] == "${{ github.event.repository.default_branch }}"
    assert any("tools.pr_comment" in s.get("run", "") for s in job["steps"])


def test_main_deploys_every_dev_tier_stack_then_every_prod_tier_one_behind_approval() -> None:
    document = _load("deploy.yml")
    assert _triggers(document)["push"]["branches"] == ["main"]
    jobs = document["jobs"]
    assert jobs["stacks"]["needs"] == "test"
    listing = " ".join(s.get("run", "") for s in jobs["stacks"]["steps"])
    assert "tools.stacks --tier dev --json" in listing
    assert "tools.stacks --tier prod --json" in listing
    assert jobs["up-dev"]["needs"] == "stacks"
    assert jobs["up-prod"]["needs"] == ["stacks", "up-dev"]
    assert jobs["up-prod"]["environment"] == "prod"
    assert jobs["up-prod"]["strategy"]["max-parallel"] == 1
    assert document["concurrency"]["cancel-in-progress"] is False
    for name, tier in (("up-dev", "dev"), ("up-prod", "prod")):
        job = jobs[name]
        assert job["strategy"]["matrix"]["stack"] == (
            f"${{{{ fromJSON(needs.stacks.outputs.{tier}) }}}}"
        )
        assert job["permissions"]["id-token"] == "write"
        aws = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
        assert "role-to-assume" in aws["with"]
        assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws["with"])
        runs = " ".join(s.get("run", "") for s in job["steps"])
        assert 'pulumi up --yes --non-interactive --diff --stack "${{ matrix.stack }}"' in runs
        assert f"policy/config/{tier}.json" in runs
        assert "make smoke" in runs
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    # No stack name is written into the workflows: they come from the stack files.
    for path in FILES:
        assert not re.search(r"--stack (dev|prod)\b|stack: \[", path.read_text()), path.name


def _run_scripts() -> Iterator[tuple[str, str]]:
    for path in FILES:
        for job_name, step in _steps(_load(path.name)):
            if "run" in step:
                yield f"{path.name}:{job_name}:{step.get('name', step['run'][:30])}", step["run"]


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (run scripts/install-system-tools.sh)",
)
@pytest.mark.parametrize(("where", "script"), list(_run_scripts()), ids=lambda v: str(v)[:60])
def test_every_run_step_passes_shellcheck(where: str, script: str, tmp_path: Path) -> None:
    """Each `run:` as the runner executes it (bash -e); expressions become plain words."""
    text = re.sub(r"\$\{\{[^}]*\}\}", "GHA_EXPRESSION", script)
    path = tmp_path / "step.sh"
    path.write_text("#!/usr/bin/env bash\nset -e\n" + text)
    result = subprocess.run(
        ["shellcheck", "--shell=bash", "--severity=style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{where}\n{result.stdout}"


def test_the_stack_list_is_every_stack_file_by_tier(tmp_path: Path) -> None:
    """`tools.stacks` (what the workflows and the Makefile read): a stack of one's own
    appears under its tier, and its policy config is its tier's."""
    home = tmp_path / "Pulumi.home.yaml"
    home.write_text((ROOT / "Pulumi.prod.yaml").read_text())
    (tmp_path / "Pulumi.yaml").write_text("name: llm-platform\n")
    (tmp_path / "notes.yaml").write_text("config: {}\n")
    found = {s.name: s.tier for s in stacks(tmp_path)}
    assert found == {"home": "prod"}
    assert [s.name for s in stacks()] == ["dev", "prod"]
    assert policy_config_path("prod").exists() and policy_config_path("dev").exists()


class _FakeCommentsApi(BaseHTTPRequestHandler):
    """Issue comments endpoints as GitHub and Gitea serve them, in memory."""

    comments: list[dict[str, Any]] = []
    seen_auth: list[str] = []

    def _reply(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _payload(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length", "0"))
        payload: dict[str, Any] = json.loads(self.rfile.read(length))
        return payload

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization", ""))
        query = parse_qs(urlsplit(self.path).query)
        page = int(query.get("page", ["1"])[0])
        self._reply(200, self.comments[(page - 1) * 100 : page * 100])

    def do_POST(self) -> None:
        comment = {"id": 1000 + len(self.comments), "body": self._payload()["body"]}
        self.comments.append(comment)
        self._reply(201, comment)

    def do_PATCH(self) -> None:
        comment_id = int(self.path.rsplit("/", 1)[1])
        (comment,) = [c for c in self.comments if c["id"] == comment_id]
        comment["body"] = self._payload()["body"]
        self._reply(200, comment)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def comments_api() -> Iterator[str]:
    _FakeCommentsApi.comments = [{"id": i, "body": f"unrelated {i}"} for i in range(150)]
    _FakeCommentsApi.seen_auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeCommentsApi)
    with BackgroundServer(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_the_comment_is_created_once_then_updated(
    comments_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pr-number").write_text("42\n")
    (tmp_path / "render-diff-prod.md").write_text("### prod\n- changed `replicas`\n")
    monkeypatch.setenv("GITHUB_API_URL", comments_api)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    assert pr_comment.main(["--repo", "team/llm-platform", "--report", str(tmp_path)]) == 0
    marked = [c for c in _FakeCommentsApi.comments if pr_comment.MARKER in c["body"]]
    assert len(marked) == 1 and "changed `replicas`" in marked[0]["body"]
    assert "No preview" in marked[0]["body"]

    (tmp_path / "preview-prod.txt").write_text("Resources: 3 to update\n")
    assert pr_comment.main(["--repo", "team/llm-platform", "--report", str(tmp_path)]) == 0
    marked = [c for c in _FakeCommentsApi.comments if pr_comment.MARKER in c["body"]]
    assert len(marked) == 1, "the second run edits the same comment (found past page 1)"
    assert "Resources: 3 to update" in marked[0]["body"]
    assert set(_FakeCommentsApi.seen_auth) == {"token test-token"}


def test_the_report_is_treated_as_data(tmp_path: Path) -> None:
    (tmp_path / "pr-number").write_text("42; rm -rf /")
    with pytest.raises(SystemExit, match="not a number"):
        pr_comment.pr_number(tmp_path)
    (tmp_path / "preview-dev.txt").write_text("x" * 100_000 + "```")
    body = pr_comment.comment_body(tmp_path)
    assert len(body) < 65_536 and "truncated" in body


def test_the_deploy_workflow_says_why_its_runners_must_be_self_hosted() -> None:
    header = []
    for line in (WORKFLOWS / "deploy.yml").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = " ".join(header)
    # `pulumi up` registers the virtual keys through the admin API behind the internal CA.
    assert "self-hosted runner in the home network" in text
    assert "LiteLLM's admin API" in text and "internal CA" in text
    delivery = (ROOT / "docs" / "delivery.md").read_text()
    assert "## The LLM gateway's admin API" in delivery
    assert "## What the real engine does that the render cannot show" in delivery

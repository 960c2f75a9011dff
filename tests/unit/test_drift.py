"""Drift detection: the summary of a `pulumi preview --refresh --json` and of two renders,
its exit status, and the one issue per stack it keeps through the REST API."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.background import BackgroundServer
from tests.support import ROOT
from tests.unit.test_workflows import _FakeCommentsApi, _load
from tools import drift

STACK_URN = "urn:pulumi:prod::llm-platform::pulumi:pulumi:Stack::llm-platform-prod"
DEPLOYMENT = (
    "urn:pulumi:prod::llm-platform::llm-platform:index:Platform$llm-platform:llm-gateway:"
    "LlmGateway$kubernetes:apps/v1:Deployment::llm-gateway-deployment"
)
BUCKET = "urn:pulumi:prod::llm-platform::llm-platform:index:Platform$aws:s3/bucket:Bucket::llm-logs"
SECRET = "sk-live-drift-secret-9f1c"
MAKE_DRIFT = ("make", "-s", "--no-print-directory", "-o", ".venv/bin/.installed", "drift")
"""`make drift`; `-o`: the venv is built (the suite runs in it), never rebuilt from a test."""


def _state(urn: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": urn,
        "custom": True,
        "type": urn.split("::")[2].rsplit("$", 1)[-1],
        "inputs": inputs,
    }


def _digest(*steps: dict[str, Any], diagnostics: list[dict[str, Any]] | None = None) -> dict:
    """A preview document as the CLI writes it with `--json` (display.PreviewDigest)."""
    return {
        "config": {
            "llm-platform:environment": "prod",
            "llm-platform:anthropic_api_key": "[secret]",
        },
        "steps": [
            {"op": "same", "urn": STACK_URN, "detailedDiff": None},
            *steps,
        ],
        "diagnostics": diagnostics or [],
        "duration": 41_000_000_000,
        "changeSummary": {},
    }


def _refresh(urn: str) -> dict[str, Any]:
    return {
        "op": "refresh",
        "urn": urn,
        "oldState": _state(urn, {"replicas": 2}),
        "newState": _state(urn, {"replicas": 2}),
        "detailedDiff": None,
    }


def test_a_refresh_that_finds_nothing_is_no_drift() -> None:
    found = drift.from_preview(_digest(_refresh(DEPLOYMENT), _refresh(BUCKET)), status=0)
    assert not found.drifted and not found.failed
    assert drift.exit_status(found) == 0
    assert "No drift" in drift.summary_markdown("prod", found)


def test_a_changed_and_a_deleted_resource_are_drift_with_their_properties() -> None:
    document = _digest(
        _refresh(DEPLOYMENT),
        _refresh(BUCKET),
        {
            "op": "update",
            "urn": DEPLOYMENT,
            "oldState": _state(DEPLOYMENT, {"spec": {"replicas": 7319}, "token": SECRET}),
            "newState": _state(DEPLOYMENT, {"spec": {"replicas": 2}, "token": "[secret]"}),
            "diffReasons": ["spec"],
            "detailedDiff": {"spec.replicas": {"kind": "update", "inputDiff": False}},
        },
        # Deleted out of band: the refresh dropped it from the state, so it is created.
        {"op": "create", "urn": BUCKET, "newState": _state(BUCKET, {}), "detailedDiff": None},
    )
    found = drift.from_preview(document, status=255)
    assert [(c.name, c.op, c.paths) for c in found.changes] == [
        ("llm-gateway-deployment", "update", ("spec.replicas",)),
        ("llm-logs", "create", ()),
    ]
    assert drift.exit_status(found) == 1
    text = drift.summary_markdown("prod", found)
    assert "would change 2 resources (1 to create, 1 to update)" in text
    assert "| `llm-gateway-deployment` | `kubernetes:apps/v1:Deployment` | update |" in text
    assert "`spec.replicas`" in text
    # Names of properties only: no value of the state, a secret least of all.
    assert SECRET not in text and "7319" not in text
    assert drift.marker("prod") in text and drift.DOCS in text


def test_replacement_reasons_stand_in_when_there_is_no_detailed_diff() -> None:
    step = {"op": "replace", "urn": BUCKET, "replaceReasons": ["bucket"], "detailedDiff": None}
    (change,) = drift.from_preview(_digest(step)).changes
    assert change.paths == ("bucket",) and change.op == "replace"


def test_a_preview_that_failed_without_a_plan_is_a_failed_check_not_a_clean_one() -> None:
    document = _digest(
        diagnostics=[
            {"severity": "error", "message": "error: kubeconfig:\n  cluster unreachable"},
            {"severity": "warning", "message": "a warning is not an error"},
        ]
    )
    found = drift.from_preview(document, status=255)
    assert found.failed and not found.drifted
    assert drift.exit_status(found) == 2
    text = drift.summary_markdown("prod", found)
    assert "The check failed" in text and "No drift" not in text
    assert "- error: kubeconfig: cluster unreachable" in text
    assert "warning" not in text


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", '{"steps": [{"op": "update"}]}'])
def test_an_unreadable_preview_exits_2(content: str, tmp_path: Path) -> None:
    preview = tmp_path / "preview.json"
    preview.write_text(content)
    assert drift.main(["--stack", "prod", "--preview", str(preview)]) == 2


def test_two_renders_show_a_replacement_as_one(
    rendered_stack: Callable[[str], Path], tmp_path: Path
) -> None:
    """A change of an input the provider cannot update in place (a Deployment's selector,
    immutable in Kubernetes) is a replacement, and so is everything whose provider is
    replaced (the cluster's identity changed), as a real preview would plan it."""
    deployed = tmp_path / "deployed"
    shutil.copytree(rendered_stack("dev"), deployed)
    plan = json.loads((deployed / "plan.json").read_text())
    gateway = next(r for r in plan["resources"] if r["name"] == "llm-gateway-deployment")
    gateway["inputs"]["spec"]["selector"]["matchLabels"]["drifted"] = "yes"
    program = tmp_path / "program"
    program.mkdir()
    (program / "plan.json").write_text(json.dumps(plan))
    found = drift.from_renders(deployed, program)
    assert [(c.name, c.op) for c in found.changes] == [("llm-gateway-deployment", "replace")]
    assert "replace" in drift.summary_markdown("dev", found)

    plan = json.loads((deployed / "plan.json").read_text())
    provider = next(r for r in plan["resources"] if r["type"] == "pulumi:providers:kubernetes")
    provider["inputs"]["clusterIdentifier"] = "another-cluster"
    (program / "plan.json").write_text(json.dumps(plan))
    found = drift.from_renders(deployed, program)
    ops = {c.op for c in found.changes}
    managed = [r for r in plan["resources"] if r.get("provider") == provider["urn"]]
    assert ops == {"replace"} and len(found.changes) == 1 + len(managed), ops


def test_two_renders_give_the_same_summary(
    rendered_stack: Callable[[str], Path], tmp_path: Path
) -> None:
    """The render of what is deployed against a render whose Deployment changed, one resource
    gone and one added: an update naming the field, a deletion and a creation."""
    deployed = tmp_path / "deployed"
    shutil.copytree(rendered_stack("dev"), deployed)
    program = tmp_path / "program"
    program.mkdir()
    plan = json.loads((deployed / "plan.json").read_text())
    resources = plan["resources"]
    gateway = next(r for r in resources if r["name"] == "llm-gateway-deployment")
    gateway["inputs"]["spec"]["replicas"] += 1
    removed = next(r for r in resources if r["type"] == "kubernetes:core/v1:ServiceAccount")
    resources.remove(removed)
    added = {**removed, "urn": removed["urn"] + "-new", "name": removed["name"] + "-new"}
    resources.append(added)
    (program / "plan.json").write_text(json.dumps(plan))

    found = drift.from_renders(deployed, program)
    by_op = {c.op: c for c in found.changes}
    assert set(by_op) == {"create", "delete", "update"}, found.changes
    assert by_op["update"].name == "llm-gateway-deployment"
    assert by_op["update"].paths == ("inputs.spec.replicas",)
    assert by_op["delete"].urn == removed["urn"] and by_op["create"].urn == added["urn"]
    assert drift.from_renders(deployed, deployed).changes == ()

    # `make drift` prints it and exits 1; the same render twice exits 0.
    def make_drift(old: Path, new: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MAKE_DRIFT, "STACK=dev", f"OLD={old}", f"NEW={new}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    result = make_drift(deployed, program)
    assert result.returncode != 0 and "would change 3 resources" in result.stdout, result
    same = make_drift(deployed, deployed)
    assert same.returncode == 0 and "No drift" in same.stdout, same


class _FakeIssuesApi(_FakeCommentsApi):
    """The issues endpoints (list, create, edit, comment) as GitHub and Gitea serve them."""

    issues: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        if "/comments" in self.path:
            super().do_GET()
            return
        self.seen_auth.append(self.headers.get("Authorization", ""))
        page = int(parse_qs(urlsplit(self.path).query)["page"][0])
        open_issues = [i for i in self.issues if i["state"] == "open"]
        self._reply(200, open_issues[(page - 1) * 100 : page * 100])

    def do_POST(self) -> None:
        if self.path.endswith("/comments"):
            super().do_POST()
            return
        payload = self._payload()
        issue = {"number": 500 + len(self.issues), "state": "open", **payload}
        self.issues.append(issue)
        self._reply(201, issue)

    def do_PATCH(self) -> None:
        number = int(self.path.rsplit("/", 1)[1])
        (issue,) = [i for i in self.issues if i["number"] == number]
        issue.update(self._payload())
        self._reply(200, issue)


@pytest.fixture
def issues_api() -> Iterator[str]:
    _FakeIssuesApi.issues = [
        {"number": n, "state": "open", "title": f"other {n}", "body": "unrelated"}
        for n in range(1, 130)
    ]
    _FakeIssuesApi.comments = []
    _FakeIssuesApi.seen_auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeIssuesApi)
    with BackgroundServer(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_one_issue_per_stack_opened_updated_then_closed(
    issues_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", issues_api)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    drifted = tmp_path / "drifted.json"
    step = {"op": "update", "urn": DEPLOYMENT, "detailedDiff": {"spec.replicas": {}}}
    drifted.write_text(json.dumps(_digest(step)))
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(_digest(_refresh(DEPLOYMENT))))
    args = ["--post-issue", "--repo", "team/llm-platform"]

    def marked(stack: str) -> list[dict[str, Any]]:
        return [i for i in _FakeIssuesApi.issues if drift.marker(stack) in i.get("body", "")]

    assert drift.main(["--stack", "prod", "--preview", str(drifted), *args]) == 1
    assert drift.main(["--stack", "prod", "--preview", str(drifted), *args]) == 1
    (issue,) = marked("prod")
    assert issue["state"] == "open" and issue["title"] == "Drift in stack prod"
    assert "spec.replicas" in issue["body"]
    # Another stack's drift is its own issue; a clean run closes only prod's, with a note.
    assert drift.main(["--stack", "dev", "--preview", str(drifted), *args]) == 1
    assert drift.main(["--stack", "prod", "--preview", str(clean), *args]) == 0
    assert issue["state"] == "closed"
    assert [i["state"] for i in marked("dev")] == ["open"]
    assert any("No drift" in c["body"] for c in _FakeIssuesApi.comments)
    assert set(_FakeIssuesApi.seen_auth) == {"token test-token"}


def test_the_drift_workflow_previews_every_stack_with_refresh_and_its_policy_config() -> None:
    document = _load("drift.yml")
    triggers = document.get("on", document.get(True))
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    jobs = document["jobs"]
    listing = " ".join(s.get("run", "") for s in jobs["stacks"]["steps"])
    assert "tools.stacks --json" in listing
    job = jobs["drift"]
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.all) }}"
    assert job["strategy"]["fail-fast"] is False
    assert job["permissions"] == {"contents": "read", "id-token": "write", "issues": "write"}
    runs = " ".join(s.get("run", "") for s in job["steps"])
    for flag in ("--refresh", "--expect-no-changes", "--json", "--policy-pack policy"):
        assert flag in runs
    assert 'tools.stacks --policy-config "${{ matrix.stack }}"' in runs
    assert "tools.drift" in runs and "--post-issue" in runs and "GITHUB_STEP_SUMMARY" in runs
    aws = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"

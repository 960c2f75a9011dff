"""checkov's AWS checks over each stack's AWS resources, as a Terraform plan.

The render's plan is converted by `tools.tf_plan` (pulumi-aws is bridged from Terraform's
provider, so resources and arguments map one to one, and a link between two resources
becomes a reference, as `terraform plan` shows it). Every failed check must be listed in
checkov-skips.yaml with `framework: terraform_plan` and its reason, and every listed skip
must still be needed. A broken copy of the prod plan (its backup bucket without its public
access block, versioning and policy) must fail, so the run is known to see the links.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from tests.artifacts.test_checkov import CHECKOV, skips
from tests.support import STACKS
from tools.mock_engine import ProgramRun
from tools.tf_plan import convert

FRAMEWORK = "terraform_plan"
BROKEN = "broken-prod"
BACKUP_BUCKET = "aws_s3_bucket.llm-gateway-db-backups"
Finding = tuple[str, str, str]  # (plan, check id, resource address)


def _plan(run: ProgramRun) -> dict[str, Any]:
    return {"resources": [r.to_json() for r in run.resources]}


def _broken(plan: dict[str, Any]) -> dict[str, Any]:
    gone = ("backups-private", "backups-versioning", "backups-policy")
    return {"resources": [r for r in plan["resources"] if not r["name"].endswith(gone)]}


@pytest.fixture(scope="module")
def results(
    stack_run: Callable[[str], ProgramRun], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Finding]]:
    """`passed` and `failed` findings of every plan, one checkov run for all."""
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed at {CHECKOV}: run `make checkov-venv`")
    tree = tmp_path_factory.mktemp("checkov-aws")
    plans = {stack: _plan(stack_run(stack)) for stack in STACKS}
    plans[BROKEN] = _broken(plans["prod"])
    for name, plan in plans.items():
        (tree / f"{name}.tfplan.json").write_text(json.dumps(convert(plan)))
    done = subprocess.run(
        [
            *(str(CHECKOV), "-d", str(tree), "--framework", FRAMEWORK),
            *("--skip-download", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tree,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    (result,) = report if isinstance(report, list) else [report]
    assert result["summary"]["parsing_errors"] == 0

    def findings(kind: str) -> list[Finding]:
        return [
            (
                Path(item["file_path"]).name.removesuffix(".tfplan.json"),
                item["check_id"],
                item["resource"],
            )
            for item in result["results"][kind]
        ]

    return {"passed": findings("passed_checks"), "failed": findings("failed_checks")}


def covered(check: str, address: str) -> bool:
    """Whether checkov-skips.yaml lists this failure of an AWS check."""
    return any(
        entry["check"] == check and any(fnmatch(address, p) for p in entry["where"])
        for entry in skips(FRAMEWORK)
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_failed_aws_check_is_a_listed_skip_with_its_reason(
    results: dict[str, list[Finding]], stack: str
) -> None:
    passed = [f for f in results["passed"] if f[0] == stack]
    assert len(passed) > 50, "checkov ran the AWS checks on the plan"
    unlisted = sorted(
        f"{check} {address}"
        for plan, check, address in results["failed"]
        if plan == stack and not covered(check, address)
    )
    assert unlisted == [], "\n".join(unlisted)


def test_every_listed_aws_skip_is_still_needed(results: dict[str, list[Finding]]) -> None:
    failed = [(c, a) for plan, c, a in results["failed"] if plan in STACKS]
    stale = []
    for entry in skips(FRAMEWORK):
        assert entry.get("why", "").strip(), f"{entry['check']}: a skip needs its reason"
        assert entry["where"] != "all", f"{entry['check']}: name the AWS resources"
        stale += [
            f"{entry['check']} {pattern}"
            for pattern in entry["where"]
            if not any(c == entry["check"] and fnmatch(a, pattern) for c, a in failed)
        ]
    assert stale == []


def test_the_checks_see_the_links_between_resources(results: dict[str, list[Finding]]) -> None:
    # the graph checks pass only through references: a bucket to its access block,
    # a VPC to its flow logs and default group
    for check, address in (
        ("CKV2_AWS_6", BACKUP_BUCKET),
        ("CKV2_AWS_11", "aws_vpc.llm-edge-vpc"),
        ("CKV2_AWS_12", "aws_vpc.llm-edge-vpc"),
        ("CKV_AWS_21", BACKUP_BUCKET),
    ):
        assert ("prod", check, address) in results["passed"], (check, address)
    # ...and fail when the linked resources are gone
    for check in ("CKV2_AWS_6", "CKV_AWS_21"):
        assert (BROKEN, check, BACKUP_BUCKET) in results["failed"], check

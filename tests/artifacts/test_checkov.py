"""checkov's Kubernetes checks over every object of both renders, own and chart.

checkov runs from `.venv-checkov` (requirements-checkov.txt, hash-pinned;
`make checkov-venv`), offline (`--skip-download`). Every failed check must be listed,
with its reason, in checkov-skips.yaml at the repository root, and every listed skip must
still be needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, STACKS

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SKIPS = ROOT / "checkov-skips.yaml"


@cache
def skips(framework: str = "kubernetes") -> list[dict[str, Any]]:
    """The entries of one checkov framework (an entry without `framework` is Kubernetes)."""
    entries: list[dict[str, Any]] = yaml.safe_load(SKIPS.read_text())
    return [e for e in entries if e.get("framework", "kubernetes") == framework]


def covered(check: str, resource: str) -> bool:
    """Whether checkov-skips.yaml lists this failure."""
    for entry in skips():
        if entry["check"] != check:
            continue
        where = entry["where"]
        if where == "all" or any(fnmatch(resource, pattern) for pattern in where):
            return True
    return False


@pytest.fixture(scope="module")
def failures(
    rendered_stack: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[str, str, str]]:
    """(check id, resource id, file) of every failed check over both stacks."""
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed at {CHECKOV}: run `make checkov-venv`")
    tree = tmp_path_factory.mktemp("checkov")
    for stack in STACKS:
        for part in ("manifests", "charts"):
            shutil.copytree(rendered_stack(stack) / part, tree / stack / part)
    done = subprocess.run(
        [
            str(CHECKOV),
            *("-d", str(tree), "--framework", "kubernetes", "--skip-download"),
            *("--quiet", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tree,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    assert sum(r["summary"]["resource_count"] for r in reports) > 500
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    return [
        (item["check_id"], item["resource"], item["file_path"])
        for r in reports
        for item in r["results"]["failed_checks"]
    ]


def test_every_failed_check_is_a_listed_skip_with_its_reason(
    failures: list[tuple[str, str, str]],
) -> None:
    unlisted = sorted(
        f"{check} {resource} ({path})"
        for check, resource, path in failures
        if not covered(check, resource)
    )
    assert unlisted == [], "\n".join(unlisted)


def test_every_listed_skip_is_still_needed(failures: list[tuple[str, str, str]]) -> None:
    stale = []
    for entry in skips():
        assert entry.get("why", "").strip(), f"{entry['check']}: a skip needs its reason"
        hits = [resource for check, resource, _ in failures if check == entry["check"]]
        patterns = ["*"] if entry["where"] == "all" else entry["where"]
        stale += [
            f"{entry['check']} {pattern}"
            for pattern in patterns
            if not any(fnmatch(resource, pattern) for resource in hits)
        ]
    assert stale == []


def test_checkov_does_flag_what_it_should(failures: list[tuple[str, str, str]]) -> None:
    # the checks ran on the chart objects too, not only on the platform's own manifests
    assert any("/charts/" in path for _, _, path in failures)
    assert not covered("CKV_K8S_16", "Deployment.llm-gateway.litellm")
    assert covered("CKV_K8S_35", "Job.llm-gateway.litellm-migrate-main-v2")

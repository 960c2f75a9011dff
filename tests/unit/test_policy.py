"""The policy pack: every rule against its fixtures, the pack wrapper, and the renders."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationArgs

from policy.pack import policies
from policy.rules import RULES, Resource, RuleSettings
from tests.support import ROOT, stack_config
from tools.mock_engine import ProgramRun
from tools.policy_check import check, main, resources_of_plan
from tools.stacks import policy_config_path

CASES = yaml.safe_load((ROOT / "tests" / "fixtures" / "policy" / "cases.yaml").read_text())
RULES_BY_NAME = {rule.name: rule for rule in RULES}
StackRun = Callable[[str], ProgramRun]


def _resource(case: dict[str, Any]) -> Resource:
    raw = case["resource"]
    return Resource(
        type=raw["type"],
        name=raw.get("name", "fixture"),
        inputs=raw.get("inputs") or {},
        protect=bool(raw.get("protect")),
    )


def _settings(case: dict[str, Any]) -> RuleSettings:
    return RuleSettings(**(case.get("settings") or {"require_protection": False}))


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['rule']}-{c['expect']}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_fixture(case: dict[str, Any]) -> None:
    problems = RULES_BY_NAME[case["rule"]].check(_resource(case), _settings(case))
    if case["expect"] == "pass":
        assert problems == []
    else:
        assert problems, "the failing fixture must produce a violation"


def test_every_rule_has_a_passing_and_a_failing_fixture() -> None:
    seen = {(case["rule"], case["expect"]) for case in CASES}
    for rule in RULES:
        assert {(rule.name, "pass"), (rule.name, "fail")} <= seen, rule.name


def _validation_args(case: dict[str, Any], config: dict[str, Any]) -> ResourceValidationArgs:
    raw = case["resource"]
    opts = PolicyResourceOptions(
        protect=bool(raw.get("protect")),
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=None,  # type: ignore[arg-type]
        additional_secret_outputs=[],
        parent=None,
    )
    return ResourceValidationArgs(
        resource_type=raw["type"],
        props=raw.get("inputs") or {},
        urn=f"urn:pulumi:test::llm-platform::{raw['type']}::fixture",
        name="fixture",
        opts=opts,
        provider=None,
        config=config,
    )


@pytest.mark.parametrize("case", [c for c in CASES if c["rule"] != "stateful-protected"])
def test_pack_reports_what_the_rule_finds(case: dict[str, Any]) -> None:
    (policy,) = [p for p in policies() if p.name == case["rule"]]
    reported: list[str] = []
    policy.validate(  # type: ignore[misc]
        _validation_args(case, {}), lambda message, urn=None: reported.append(message)
    )
    assert bool(reported) == (case["expect"] == "fail")
    assert all(message.startswith(f"{case['rule']}: ") for message in reported)


def test_pack_protection_rule_follows_its_config() -> None:
    (policy,) = [p for p in policies() if p.name == "stateful-protected"]
    case = {"resource": {"type": "kubernetes:core/v1:PersistentVolumeClaim", "inputs": {}}}
    for require, expected in ((False, 0), (True, 1)):
        reported: list[str] = []
        policy.validate(  # type: ignore[misc]
            _validation_args(case, {"requireProtection": require}),
            lambda message, urn=None, found=reported: found.append(message),
        )
        assert len(reported) == expected


def test_pack_defaults_to_advisory_and_prod_config_makes_it_mandatory() -> None:
    assert {p.enforcement_level for p in policies()} == {EnforcementLevel.ADVISORY}
    assert {p.name for p in policies()} == set(RULES_BY_NAME)
    prod, dev = _tier_config("prod"), _tier_config("dev")
    assert prod["all"] == "mandatory" and dev["all"] == "advisory"
    assert prod["stateful-protected"]["requireProtection"] is True
    assert dev["stateful-protected"]["requireProtection"] is False
    for config in (prod, dev):
        assert set(config) - {"all"} <= set(RULES_BY_NAME)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_rendered_stacks_break_no_rule(stack_run: StackRun, stack: str) -> None:
    plan = {"resources": [r.to_json() for r in stack_run(stack).resources]}
    violations = check(resources_of_plan(plan), _tier_config(stack_config(stack).environment))
    assert [v.line() for v in violations] == []


def _tier_config(tier: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(policy_config_path(tier).read_text())
    return config


def _write_plan(tmp_path: Path, plan: dict[str, Any], tier: str) -> Path:
    """A render of `plan` whose stack has the tier `tier` (its `environment` output)."""
    render = tmp_path / f"render-{tier}"
    render.mkdir()
    (render / "plan.json").write_text(json.dumps(plan))
    (render / "outputs.json").write_text(json.dumps({"environment": tier}))
    return render


def test_a_broken_prod_render_fails_naming_the_resource_and_the_rule(
    stack_run: StackRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = {"resources": [copy.deepcopy(r.to_json()) for r in stack_run("prod").resources]}
    deployments = [r for r in plan["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"]
    assert deployments, "prod renders Deployments"
    broken = deployments[0]
    container = broken["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = container["image"].split("@")[0].rsplit(":", 1)[0] + ":latest"
    del container["resources"]["limits"]
    render = _write_plan(tmp_path, plan, "prod")

    # The tier decides, not the name: a stack called `home` on the prod tier is held to it.
    assert main(["--stack", "home", "--render", str(render)]) == 1
    out = capsys.readouterr().out
    assert f"MANDATORY pinned-images: kubernetes:apps/v1:Deployment {broken['name']!r}" in out
    assert f"MANDATORY requests-and-limits: kubernetes:apps/v1:Deployment {broken['name']!r}" in out
    # The same break on the dev tier is reported but advisory.
    assert main(["--stack", "home", "--render", str(_write_plan(tmp_path, plan, "dev"))]) == 0
    assert "ADVISORY pinned-images" in capsys.readouterr().out

"""The policy pack: every rule against its fixtures, the pack wrapper, and the renders."""

from __future__ import annotations

import copy
import json
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
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


# --- the pack as the engine runs it -------------------------------------------------------

SECRET_SIG = "4dabf18193072939515e22adb298388d"
"""The engine's envelope of a secret property value (`pulumi/sdk` `rpc.py`
`_special_secret_sig`): CrossGuard's deserializer unwraps it, so a policy sees the plain
value."""
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"


def _engine_secret(value: str) -> dict[str, str]:
    return {SECRET_SIG: SECRET_SIG_VALUE, "value": value}


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """`policy/__main__.py` started as the Pulumi CLI starts a policy pack (it serves the
    analyzer over gRPC on loopback and prints the port), configured with the prod tier's
    policy config the way the CLI turns `--policy-pack-config` into per-policy config."""
    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "policy" / "__main__.py")],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready and process.stdout is not None, "the pack printed no port within 60 s"
        port = int(process.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        tier = _tier_config("prod")
        level = {"mandatory": analyzer_pb2.MANDATORY, "advisory": analyzer_pb2.ADVISORY}
        policy_config = {}
        for policy in info.policies:
            own = tier.get(policy.name)
            properties = struct_pb2.Struct()
            properties.update(own if isinstance(own, dict) else {})
            policy_config[policy.name] = analyzer_pb2.PolicyConfig(
                enforcementLevel=level[own if isinstance(own, str) else tier["all"]],
                properties=properties,
            )
        stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config))

        def analyze(type_: str, name: str, properties: dict[str, Any]) -> list[Any]:
            struct = struct_pb2.Struct()
            struct.update(properties)
            request = analyzer_pb2.AnalyzeRequest(
                type=type_, name=name, urn=f"urn:pulumi:prod::llm-platform::{type_}::{name}",
                properties=struct,
            )  # fmt: skip
            return list(stub.Analyze(request, timeout=30).diagnostics)

        yield SimpleNamespace(info=info, analyze=analyze)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_the_pack_serves_every_rule_through_the_engines_entry_point(analyzer: Any) -> None:
    assert {p.name for p in analyzer.info.policies} == set(RULES_BY_NAME)


def test_secrets_are_found_as_crossguard_passes_them_plain(analyzer: Any) -> None:
    """A generated password (an engine secret, so plain to the policy) in a ConfigMap under
    an innocent key, a secret-named ConfigMap key and a secret-named plain env value: each
    is a mandatory violation on prod; the same ConfigMap with public values is clean."""
    from pulumi.runtime.proto import analyzer_pb2

    password = "q7Rt2WmZ9xKp4LcN8vBh3JdF6sGy1Ae5"
    found = analyzer.analyze(
        "kubernetes:core/v1:ConfigMap",
        "app-config",
        {"kind": "ConfigMap", "data": {"settings": _engine_secret(password),
                                       "db-password": "hunter2", "ca.crt": "PUBLIC"}},
    )  # fmt: skip
    messages = sorted(d.message for d in found)
    assert [d.policyName for d in found] == ["no-clear-secrets"] * 2, messages
    assert all(d.enforcementLevel == analyzer_pb2.MANDATORY for d in found)
    assert any("'settings' holds a secret value" in m for m in messages)
    assert any("'db-password' is named as a secret" in m for m in messages)
    assert all(password not in m for m in messages)

    deployment = {
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [{
            "name": "app", "image": "example/app:1.2.3@sha256:" + "a" * 64,
            "env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "LOG_LEVEL", "value": "info"}],
        }]}}},
    }  # fmt: skip
    env = [d for d in analyzer.analyze("kubernetes:apps/v1:Deployment", "app", deployment)
           if d.policyName == "no-clear-secrets"]  # fmt: skip
    assert len(env) == 1 and "'DB_PASSWORD' is a plain value" in env[0].message

    clean = analyzer.analyze(
        "kubernetes:core/v1:ConfigMap",
        "public",
        {"kind": "ConfigMap", "data": {"model": "meta-llama/Llama-3.1-8B-Instruct",
                                       "url": "http://vllm-qwen3-8b.inference.svc:8000/v1"}},
    )  # fmt: skip
    assert clean == []

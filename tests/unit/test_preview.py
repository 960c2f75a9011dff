"""The offline preview: URNs as the engine makes them, unknowns as a real preview shows
them, and the replacements the providers would plan (`tools.replacements`)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml

from tests.support import ROOT, STACKS, committed_stack_run
from tools import preview as preview_cli
from tools.mock_engine import DuplicateUrnError, ProgramRun, run_program
from tools.render import run_stack_program, stack_program
from tools.replacements import (
    AWS_REPLACE_ON_CHANGE,
    UNKNOWN,
    UnknownResourceTypeError,
    kubernetes_provider_replaces,
    plan_step,
    replace_on_change,
)

KUBE_PROVIDER = "pulumi:providers:kubernetes"


class Layer(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("test:index:Layer", name, None, opts)


def _run(program: Any, prior: dict[str, Any] | None = None) -> ProgramRun:
    return run_program(stack="dev", config={}, secret_keys=[], program=program, prior=prior)


def _prior(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """A run's resources as the state a preview starts from (what plan.json holds)."""
    return {r.urn: copy.deepcopy(r.to_json()) for r in run.resources}


# --- URNs -------------------------------------------------------------------------------


def test_urns_carry_the_whole_chain_of_parent_types() -> None:
    def program() -> dict[str, Any]:
        outer = Layer("outer")
        inner = Layer("inner", pulumi.ResourceOptions(parent=outer))
        aws.Provider("aws", region="eu-west-1", opts=pulumi.ResourceOptions(parent=inner))
        return {}

    urns = {r.name: r.urn for r in _run(program).resources}
    # pulumi/pulumi pkg/resource/deploy/deployment.go generateURN: the parent's qualified
    # type (every type from below the stack down to the parent), then the resource's own.
    assert urns["outer"] == "urn:pulumi:dev::llm-platform::test:index:Layer::outer"
    assert urns["inner"] == "urn:pulumi:dev::llm-platform::test:index:Layer$test:index:Layer::inner"
    assert urns["aws"] == (
        "urn:pulumi:dev::llm-platform::test:index:Layer$test:index:Layer$pulumi:providers:aws::aws"
    )


def test_a_second_registration_of_one_urn_fails_the_run() -> None:
    def program() -> dict[str, Any]:
        aws.Provider("aws", region="eu-west-1")
        aws.Provider("aws", region="eu-central-1")
        return {}

    # The engine fails the deployment ("Duplicate resource URN"); the mocks used to keep
    # the second registration silently.
    with pytest.raises(
        DuplicateUrnError, match="'urn:pulumi:dev::llm-platform::pulumi:providers:aws::aws'"
    ):
        _run(program)


# --- unknowns -----------------------------------------------------------------------------


def _edge_like() -> dict[str, Any]:
    provider = aws.Provider("aws", region="eu-west-1")
    on_aws = pulumi.ResourceOptions(provider=provider)
    role = aws.iam.Role("role", assume_role_policy="{}", opts=on_aws)
    profile = aws.iam.InstanceProfile("profile", role=role.name, opts=on_aws)
    eni = aws.ec2.NetworkInterface("eni", subnet_id="subnet-1", opts=on_aws)
    address = aws.ec2.Eip("eip", domain="vpc", network_interface=eni.id, opts=on_aws)
    aws.ec2.Instance(
        "instance",
        ami="ami-1",
        instance_type="t4g.small",
        iam_instance_profile=profile.name,
        primary_network_interface={"network_interface_id": eni.id},
        opts=on_aws,
    )
    pulumi.export("ip", address.public_ip)
    pulumi.export("profile", profile.name)
    return {}


def test_a_first_preview_knows_names_but_not_what_only_creation_gives() -> None:
    run = _run(_edge_like, prior={})
    assert {r.step.op for r in run.resources if r.custom and r.step} == {"create"}
    instance = run.named("instance")
    # An auto-name is chosen in the provider's Check, before anything exists: known.
    assert instance.inputs["iamInstanceProfile"] != UNKNOWN
    # An id and an address exist only once created: unknown, and so is what flows from them.
    assert instance.inputs["primaryNetworkInterface"] == {"networkInterfaceId": UNKNOWN}
    assert run.named("eip").inputs["networkInterface"] == UNKNOWN
    assert run.outputs["ip"] == UNKNOWN
    assert run.outputs["profile"] != UNKNOWN


def test_against_its_own_state_nothing_changes_and_everything_is_known() -> None:
    state = _prior(_run(_edge_like))
    run = _run(_edge_like, prior=state)
    assert {r.step.op for r in run.resources if r.step} == {"same"}
    assert run.outputs["ip"] == "192.0.2.10"
    assert run.deleted == []


def test_a_replaced_resource_makes_its_dependents_inputs_unknown() -> None:
    state = _prior(_run(_edge_like))
    eni = next(urn for urn, r in state.items() if r["name"] == "eni")
    state[eni]["inputs"]["subnetId"] = "subnet-0"  # the state had another subnet
    run = _run(_edge_like, prior=state)
    assert run.named("eni").step.op == "replace"  # type: ignore[union-attr]
    assert run.named("eni").step.replace_keys == ("subnetId",)  # type: ignore[union-attr]
    # The new interface's id is unknown: the instance's primary interface (ForceNew) and
    # the address follow it.
    instance = run.named("instance").step
    assert instance is not None and instance.op == "replace"
    assert instance.replace_keys == ("primaryNetworkInterface",)
    assert run.named("eip").step.op == "update"  # type: ignore[union-attr]
    assert run.named("role").step.op == "same"  # type: ignore[union-attr]


def test_a_resource_gone_from_the_program_is_deleted() -> None:
    state = _prior(_run(_edge_like))
    state["urn:pulumi:dev::llm-platform::aws:ec2/vpc:Vpc::gone"] = {
        "type": "aws:ec2/vpc:Vpc",
        "inputs": {},
    }
    assert _run(_edge_like, prior=state).deleted == [
        "urn:pulumi:dev::llm-platform::aws:ec2/vpc:Vpc::gone"
    ]


# --- the replace-on-change table ------------------------------------------------------------


def _step(resource_type: str, old: dict[str, Any], new: dict[str, Any], **kw: Any) -> Any:
    return plan_step(resource_type, old, new, **kw)


def test_edge_instance_user_data_replaces_deleting_first_only_with_replace_on_change() -> None:
    old = {"userDataBase64": "AAAA", "userDataReplaceOnChange": True, "instanceType": "t4g.small"}
    new = {**old, "userDataBase64": "BBBB"}
    step = _step("aws:ec2/instance:Instance", old, new, delete_before_replace=True)
    assert (step.op, step.replace_keys, step.delete_before_replace) == (
        "replace",
        ("userDataBase64",),
        True,
    )
    # Without the flag, new user-data is a stop and start: an update.
    plain = {**old, "userDataReplaceOnChange": False}
    assert _step("aws:ec2/instance:Instance", plain, {**plain, "userDataBase64": "B"}).op == (
        "update"
    )
    # A bigger instance type is an update too; a new AMI replaces.
    assert _step("aws:ec2/instance:Instance", old, {**old, "instanceType": "t4g.large"}).op == (
        "update"
    )
    assert _step("aws:ec2/instance:Instance", {"ami": "a"}, {"ami": "b"}).op == "replace"


def test_an_explicitly_named_aws_resource_is_deleted_before_it_is_replaced() -> None:
    named = _step("aws:ssm/parameter:Parameter", {"name": "/a"}, {"name": "/b"})
    assert (named.op, named.delete_before_replace) == ("replace", True)
    # An auto-named role gets a fresh name: the new one is created first.
    auto = _step("aws:iam/role:Role", {"path": "/a/"}, {"path": "/b/"})
    assert (auto.op, auto.delete_before_replace) == ("replace", False)
    assert _step("aws:iam/role:Role", {"tags": {"a": "1"}}, {"tags": {"a": "2"}}).op == "update"


def test_an_unknown_value_in_a_replacing_property_replaces() -> None:
    step = _step("aws:ec2/subnet:Subnet", {"vpcId": "vpc-1"}, {"vpcId": UNKNOWN})
    assert step.op == "replace" and step.replace_keys == ("vpcId",)
    # ... and in another property it is an update.
    assert _step("aws:ec2/subnet:Subnet", {"tags": {}}, {"tags": UNKNOWN}).op == "update"


def test_kubernetes_objects_replace_on_identity_and_their_kinds_immutable_fields() -> None:
    meta = {"metadata": {"name": "gw", "namespace": "llm-gateway"}}
    cm = "kubernetes:core/v1:ConfigMap"
    step = _step(cm, {**meta, "data": {"a": "1"}}, {**meta, "data": {"a": "2"}})
    # ConfigMaps are immutable to pulumi-kubernetes by default; same name: delete first.
    assert (step.op, step.replace_keys, step.delete_before_replace) == ("replace", ("data",), True)
    deployment = "kubernetes:apps/v1:Deployment"
    old = {**meta, "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "1"}}}}
    assert _step(deployment, old, {**meta, "spec": {**old["spec"], "replicas": 2}}).op == "update"
    moved = {**old, "spec": {**old["spec"], "selector": {"matchLabels": {"a": "2"}}}}
    assert _step(deployment, old, moved).replace_keys == ("spec.selector",)
    renamed = _step(deployment, old, {**old, "metadata": {"name": "gw2", "namespace": "x"}})
    assert renamed.op == "replace" and not renamed.delete_before_replace
    # A Helm release's values update in place; its name replaces.
    release = "kubernetes:helm.sh/v3:Release"
    assert _step(release, {"name": "t", "values": {"a": 1}}, {"name": "t", "values": {}}).op == (
        "update"
    )
    assert _step(release, {"name": "t"}, {"name": "u"}).op == "replace"


def test_commands_replace_on_triggers_only() -> None:
    command = "command:remote:Command"
    assert _step(command, {"create": "a"}, {"create": "b"}).op == "update"
    assert _step(command, {"triggers": ["1"]}, {"triggers": ["2"]}).op == "replace"


def test_a_type_without_rules_is_refused_rather_than_guessed() -> None:
    with pytest.raises(UnknownResourceTypeError, match="aws:rds/instance:Instance"):
        _step("aws:rds/instance:Instance", {"a": 1}, {"a": 2})


@pytest.mark.parametrize("stack", STACKS)
def test_every_type_the_stacks_register_has_rules(stack: str) -> None:
    types = {r.type for r in committed_stack_run(stack).resources if r.custom}
    functions = {KUBE_PROVIDER, "pulumi-python:dynamic:Resource"}
    for resource_type in sorted(types - functions):
        replace_on_change(resource_type)  # raises for a type without rules
    aws_types = {t for t in types if t.startswith("aws:")}
    assert aws_types <= set(AWS_REPLACE_ON_CHANGE)


def test_a_new_virtual_key_value_replaces_it_deleting_the_old_key_first() -> None:
    old = {"admin_url": "https://api", "key": "[secret a]", "key_alias": "c", "master_key": "m"}
    step = _step("pulumi-python:dynamic:Resource", old, {**old, "key": UNKNOWN})
    assert (step.op, step.replace_keys, step.delete_before_replace) == ("replace", ("key",), True)
    assert _step("pulumi-python:dynamic:Resource", old, {**old, "rpm_limit": 5}).op == "update"


# --- the Kubernetes provider's identity ----------------------------------------------------


def test_kubernetes_provider_diff_config_keeps_an_identified_cluster() -> None:
    old = {"kubeconfig": "[secret 1]", "clusterIdentifier": "llm-platform"}
    # pulumi-kubernetes DiffConfig: an unknown kubeconfig replaces a provider without an
    # identity, and never one whose identity stays the same.
    assert kubernetes_provider_replaces({"kubeconfig": "k"}, {"kubeconfig": UNKNOWN}) == [
        "kubeconfig"
    ]
    assert kubernetes_provider_replaces(old, {**old, "kubeconfig": UNKNOWN}) == []
    assert kubernetes_provider_replaces(old, {**old, "kubeconfig": "[secret 2]"}) == []
    assert kubernetes_provider_replaces(old, {**old, "clusterIdentifier": "other"}) == [
        "clusterIdentifier"
    ]
    # Adding the identity is neither same nor changed: an unknown kubeconfig still replaces.
    added = kubernetes_provider_replaces({"kubeconfig": "k"}, {**old, "kubeconfig": UNKNOWN})
    assert added == ["kubeconfig"]


def _prod_with(tmp_path: Path, change: Any) -> Path:
    """The prod stack file changed by `change`, written under `tmp_path`."""
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    change(document["config"])
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@cache
def _prod_state() -> dict[str, dict[str, Any]]:
    """The state a `pulumi up` of the committed prod stack file leaves (the render's own
    secret placeholders, which the preview runs with too)."""
    return _prior(run_stack_program("prod", stack_program("prod", ROOT / "Pulumi.prod.yaml")))


def _prod_preview(stack_file: Path, state: dict[str, dict[str, Any]]) -> ProgramRun:
    return run_stack_program("prod", stack_program("prod", stack_file), state)


def _replaced(run: ProgramRun, prefix: str = "kubernetes:") -> list[str]:
    return [
        r.name
        for r in run.resources
        if r.type.startswith(prefix) and r.step is not None and r.step.op == "replace"
    ]


def test_an_unknown_kubeconfig_at_preview_updates_the_provider_and_replaces_nothing(
    tmp_path: Path,
) -> None:
    def new_user(config: dict[str, Any]) -> None:
        config["llm-platform:cluster"]["nodes"]["rack-1"]["ssh_user"] = "admin"

    run = _prod_preview(_prod_with(tmp_path, new_user), _prod_state())
    # The kubeconfig is read over a changed connection: unknown until `pulumi up` runs.
    assert run.named("llm-cluster-kubeconfig").step.op == "update"  # type: ignore[union-attr]
    provider = run.named("llm-cluster-provider")
    assert provider.inputs["kubeconfig"] == UNKNOWN
    assert provider.inputs["clusterIdentifier"] == "llm-platform"
    assert provider.step is not None and provider.step.op == "update"
    assert _replaced(run) == []


def test_a_new_k3s_version_reads_the_kubeconfig_again_without_replacing_the_cluster(
    tmp_path: Path,
) -> None:
    def upgrade(config: dict[str, Any]) -> None:
        config["llm-platform:cluster"]["k3s_version"] = "v1.36.3+k3s1"

    run = _prod_preview(_prod_with(tmp_path, upgrade), _prod_state())
    reader = run.named("llm-cluster-kubeconfig").step
    assert reader is not None and (reader.op, reader.replace_keys) == ("replace", ("triggers",))
    assert run.named("llm-cluster-provider").step.op == "update"  # type: ignore[union-attr]
    assert _replaced(run) == []


def test_state_from_before_the_identity_shows_the_one_time_step_is_needed() -> None:
    """The first `pulumi up` that adds `clusterIdentifier` also adds the reader's
    triggers: against such a state the preview flags every Kubernetes resource, which is
    why docs/cluster.md has existing bootstrap stacks update the provider alone first."""
    state = copy.deepcopy(_prod_state())
    for entry in state.values():
        if entry["type"] == KUBE_PROVIDER:
            del entry["inputs"]["clusterIdentifier"]
        if entry["name"] == "llm-cluster-kubeconfig":
            del entry["inputs"]["triggers"]
    run = _prod_preview(ROOT / "Pulumi.prod.yaml", state)
    assert run.named("llm-cluster-provider").step.replace_keys == ("kubeconfig",)  # type: ignore[union-attr]
    assert len(_replaced(run)) > 100
    # With the provider updated first (the identity in state), the same preview is calm.
    provider_only = copy.deepcopy(state)
    for urn, entry in provider_only.items():
        if entry["type"] == KUBE_PROVIDER:
            entry["inputs"]["clusterIdentifier"] = state[urn]["inputs"].get(
                "clusterIdentifier", "llm-platform"
            )
    assert _replaced(_prod_preview(ROOT / "Pulumi.prod.yaml", provider_only)) == []


@pytest.mark.parametrize("stack", STACKS)
def test_make_preview_works_for_the_stack(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert preview_cli.main(["--stack", stack]) == 0
    report = capsys.readouterr().out
    assert report.startswith(f"## Offline preview of stack `{stack}` as a new stack")
    assert "0 to replace" in report and "to create" in report
    assert "### Known only after `pulumi up`" in report

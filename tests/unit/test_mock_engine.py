"""The mock engine gives resources the outputs a real provider fills, and reports inputs the
program set but the render could not show."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from tests.support import STACKS
from tools.mock_engine import ProgramRun, autoname, run_program

StackRun = Any


def _run(program: Any) -> ProgramRun:
    return run_program(stack="dev", config={}, secret_keys=[], program=program)


def test_an_input_from_an_output_that_resolves_to_nothing_is_reported() -> None:
    def program() -> dict[str, Any]:
        provider = aws.Provider("aws", region="eu-west-1")
        on_aws = pulumi.ResourceOptions(provider=provider)
        role = aws.iam.Role("role", assume_role_policy="{}", opts=on_aws)
        # `unique_id` is an output no mock fills: the attachment loses its role.
        aws.iam.RolePolicyAttachment(
            "unlinked", role=role.unique_id, policy_arn="arn:aws:iam::aws:policy/x", opts=on_aws
        )
        aws.iam.RolePolicyAttachment(
            "linked", role=role.name, policy_arn="arn:aws:iam::aws:policy/x", opts=on_aws
        )
        return {}

    run = _run(program)
    assert run.dropped_inputs == [
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment unlinked: role"
    ]
    assert "role" not in run.named("unlinked").inputs
    assert run.named("linked").inputs["role"] == autoname("role")


def test_auto_named_resources_get_a_name_their_id_and_arn_follow_aws() -> None:
    def program() -> dict[str, Any]:
        provider = aws.Provider("aws", region="eu-central-1")
        on_aws = pulumi.ResourceOptions(provider=provider)
        role = aws.iam.Role("role", path="/llm-platform/", assume_role_policy="{}", opts=on_aws)
        bucket = aws.s3.Bucket("bucket", opts=on_aws)
        parameter = aws.ssm.Parameter("p", name="/a/b", type="String", value="v", opts=on_aws)
        pulumi.export("role", [role.id, role.name, role.arn])
        pulumi.export("bucket", [bucket.id, bucket.bucket, bucket.arn])
        pulumi.export("parameter", [parameter.id, parameter.arn])
        return {}

    outputs = _run(program).outputs
    name = autoname("role")
    assert name.startswith("role-") and len(name) == len("role-") + 7
    assert outputs["role"] == [name, name, f"arn:aws:iam::000000000000:role/llm-platform/{name}"]
    bucket = autoname("bucket")
    assert outputs["bucket"] == [bucket, bucket, f"arn:aws:s3:::{bucket}"]
    assert outputs["parameter"] == ["/a/b", "arn:aws:ssm:eu-central-1:000000000000:parameter/a/b"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_input_the_stack_sets_reaches_the_plan(stack_run: StackRun, stack: str) -> None:
    run = stack_run(stack)
    assert run.dropped_inputs == []
    # The links the render used to lose: the instance's profile and the profile's role.
    instance = run.of_type("aws:ec2/instance:Instance")[0]
    (profile,) = run.of_type("aws:iam/instanceProfile:InstanceProfile")
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("edge-role")]
    assert instance.inputs["iamInstanceProfile"] == autoname(profile.name)
    assert profile.inputs["role"] == autoname(role.name)

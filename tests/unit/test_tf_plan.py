"""The render's AWS resources as a Terraform plan: names, blocks and links."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import STACKS, committed_stack_run
from tools.mock_engine import autoname
from tools.tf_plan import TF_TYPES, ConversionError, convert, snake

PROVIDER = "urn:pulumi:prod::llm-platform::pulumi:providers:aws::aws"


def _resource(typ: str, name: str, **inputs: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:{name}",
        "type": typ,
        "name": name,
        "custom": True,
        "provider": PROVIDER,
        "inputs": inputs,
    }


def test_arguments_are_terraforms_names() -> None:
    assert snake("httpPutResponseHopLimit") == "http_put_response_hop_limit"
    assert snake("userDataBase64") == "user_data_base64"
    assert snake("rules") == "rule" and snake("routes") == "route"
    assert snake("abortIncompleteMultipartUpload") == "abort_incomplete_multipart_upload"


def test_an_input_holding_another_resources_output_becomes_a_reference() -> None:
    plan = {
        "resources": [
            {
                "urn": PROVIDER,
                "type": "pulumi:providers:aws",
                "name": "aws",
                "custom": True,
                "provider": None,
                "inputs": {"region": "eu-west-1"},
            },
            _resource("aws:s3/bucket:Bucket", "logs", bucket="my-logs", tags={"Name": "x"}),
            _resource("aws:s3/bucket:Bucket", "data", bucket="my-data"),
            _resource(
                "aws:s3/bucketLogging:BucketLogging",
                "data-logging",
                bucket="my-data",
                targetBucket="my-logs",
                targetPrefix="s3-access/data/",
            ),
            _resource("aws:iam/role:Role", "role", assumeRolePolicy="{}"),
            _resource("aws:iam/rolePolicy:RolePolicy", "p", role=autoname("role"), policy="{}"),
        ]
    }
    tf = convert(plan)
    (logging,) = [
        r for r in tf["configuration"]["root_module"]["resources"] if r["name"] == "data-logging"
    ]
    assert logging["expressions"] == {
        "bucket": {"references": ["aws_s3_bucket.data.id", "aws_s3_bucket.data"]},
        "target_bucket": {"references": ["aws_s3_bucket.logs.id", "aws_s3_bucket.logs"]},
    }
    (values,) = [
        r["values"]
        for r in tf["planned_values"]["root_module"]["resources"]
        if r["name"] == "data-logging"
    ]
    assert values == {"target_prefix": "s3-access/data/"}, "a reference is unknown until apply"
    (policy,) = [r for r in tf["configuration"]["root_module"]["resources"] if r["name"] == "p"]
    assert policy["expressions"]["role"]["references"][1] == "aws_iam_role.role"
    (bucket,) = [
        r["values"] for r in tf["planned_values"]["root_module"]["resources"] if r["name"] == "logs"
    ]
    assert bucket == {"bucket": "my-logs", "tags": {"Name": "x"}}, (
        "no self-reference, map keys kept"
    )


def test_a_type_without_a_terraform_name_stops_the_conversion() -> None:
    plan = {"resources": [_resource("aws:lambda/function:Function", "f", runtime="python3.12")]}
    with pytest.raises(ConversionError, match="aws:lambda/function:Function"):
        convert(plan)


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_resource_of_the_stacks_converts(stack: str) -> None:
    run = committed_stack_run(stack)
    tf = convert({"resources": [r.to_json() for r in run.resources]})
    aws = [r for r in run.resources if r.custom and r.type.startswith("aws:")]
    converted = tf["planned_values"]["root_module"]["resources"]
    assert len(converted) == len(aws)
    assert {r["type"] for r in converted} <= set(TF_TYPES.values())

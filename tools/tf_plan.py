"""The render's AWS resources as a Terraform plan (JSON), for checkov's AWS checks.

pulumi-aws is bridged from Terraform's AWS provider, so each resource maps one to one:
the type token to the Terraform type (`TF_TYPES`), each input to its argument (camelCase
to snake_case; list blocks that Pulumi names in the plural back to Terraform's singular,
`PLURALS`). An input holding another resource's `id`, `arn` or name (as the mock engine
gives them, `tools.mock_engine.aws_outputs`) becomes what `terraform plan` shows for a
resource not yet created: the value unknown until apply, and a reference to that resource
in the configuration, which is how checkov links a bucket to its public access block or
its policy. A type without a mapping stops the conversion, so nothing is silently left out.

    python -m tools.tf_plan build/prod/plan.json > build/prod/tfplan.json
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.mock_engine import aws_outputs

PROVIDER = "registry.terraform.io/hashicorp/aws"

TF_TYPES = {
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/instance:Instance": "aws_instance",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/networkInterface:NetworkInterface": "aws_network_interface",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:iam/accessKey:AccessKey": "aws_iam_access_key",
    "aws:iam/instanceProfile:InstanceProfile": "aws_iam_instance_profile",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:iam/user:User": "aws_iam_user",
    "aws:iam/userPolicy:UserPolicy": "aws_iam_user_policy",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:route53/record:Record": "aws_route53_record",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "aws_s3_bucket_lifecycle_configuration"
    ),
    "aws:s3/bucketLogging:BucketLogging": "aws_s3_bucket_logging",
    "aws:s3/bucketObjectv2:BucketObjectv2": "aws_s3_object",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "aws_s3_bucket_ownership_controls",
    "aws:s3/bucketPolicy:BucketPolicy": "aws_s3_bucket_policy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "aws_s3_bucket_public_access_block",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "aws_s3_bucket_server_side_encryption_configuration"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": "aws_s3_bucket_versioning",
    "aws:ssm/parameter:Parameter": "aws_ssm_parameter",
}
"""Pulumi type token → Terraform resource type, for every AWS type the program uses."""

PLURALS = {
    "rules": "rule",
    "routes": "route",
    "transitions": "transition",
    "noncurrentVersionTransitions": "noncurrent_version_transition",
    "ebsBlockDevices": "ebs_block_device",
    "networkInterfaces": "network_interface",
    "inlinePolicies": "inline_policy",
    "aliases": "alias",
    "targetGrants": "target_grant",
}
"""Terraform list blocks Pulumi names in the plural (Pulumi name → Terraform name)."""

MAPS = frozenset({"tags", "tagsAll", "metadata"})
"""Arguments that are maps: their keys are data, kept as written."""

LINK_OUTPUTS = ("id", "arn", "name", "bucket")


class ConversionError(ValueError):
    """The plan holds something the conversion cannot map."""


def snake(name: str) -> str:
    """Pulumi's camelCase argument name as Terraform's snake_case."""
    if name in PLURALS:
        return PLURALS[name]
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _arguments(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            snake(k): (dict(v) if k in MAPS and isinstance(v, Mapping) else _arguments(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_arguments(v) for v in value]
    return value


def _regions(resources: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """AWS provider URN → its region."""
    return {
        r["urn"]: str(r["inputs"].get("region", ""))
        for r in resources
        if r["type"] == "pulumi:providers:aws"
    }


def _links(
    resources: Sequence[Mapping[str, Any]], regions: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Output value → (address, attribute) of the one resource that has it."""
    found: dict[str, list[tuple[str, str]]] = {}
    for resource in resources:
        tf_type = TF_TYPES.get(resource["type"])
        if tf_type is None:
            continue
        outputs = aws_outputs(
            resource["type"],
            resource["name"],
            dict(resource["inputs"]),
            regions.get(resource.get("provider") or "", ""),
        )
        address = f"{tf_type}.{resource['name']}"
        for attribute in LINK_OUTPUTS:
            value = outputs.get(attribute)
            if value and (address, attribute) not in found.get(value, []):
                found.setdefault(value, []).append((address, attribute))
    return {
        value: places[0]
        for value, places in found.items()
        # one resource's id and name are often the same value: any of them links it
        if len({address for address, _ in places}) == 1
    }


def convert(plan: Mapping[str, Any]) -> dict[str, Any]:
    """A Terraform plan (JSON format 1.2) of the plan's AWS resources, all to be created."""
    resources = plan["resources"]
    regions = _regions(resources)
    links = _links(resources, regions)
    planned, changes, configured = [], [], []
    for resource in resources:
        if not resource["custom"] or not resource["type"].startswith("aws:"):
            continue
        tf_type = TF_TYPES.get(resource["type"])
        if tf_type is None:
            raise ConversionError(f"no Terraform type for {resource['type']} ({resource['name']})")
        address = f"{tf_type}.{resource['name']}"
        values: dict[str, Any] = {}
        unknown: dict[str, Any] = {}
        expressions: dict[str, Any] = {}
        for key, value in _arguments(dict(resource["inputs"])).items():
            items = value if isinstance(value, list) else [value]
            targets = [
                links.get(v) if isinstance(v, str) and links.get(v, ("",))[0] != address else None
                for v in items
            ]
            if any(targets):
                references = []
                for target in targets:
                    if target is not None:
                        references += [f"{target[0]}.{target[1]}", target[0]]
                expressions[key] = {"references": references}
                if isinstance(value, list):
                    values[key] = [None if t else v for v, t in zip(items, targets, strict=True)]
                    unknown[key] = [bool(t) for t in targets]
                else:
                    unknown[key] = True
            else:
                values[key] = value
        common = {"address": address, "mode": "managed", "type": tf_type, "name": resource["name"]}
        planned.append({**common, "provider_name": PROVIDER, "schema_version": 0, "values": values})
        changes.append(
            {
                **common,
                "provider_name": PROVIDER,
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": values,
                    "after_unknown": unknown,
                },
            }
        )
        configured.append({**common, "provider_config_key": "aws", "expressions": expressions})
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "full_name": PROVIDER}},
            "root_module": {"resources": configured},
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Print the Terraform plan of a render's `plan.json`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tools.tf_plan build/<stack>/plan.json", file=sys.stderr)
        return 2
    print(json.dumps(convert(json.loads(Path(args[0]).read_text())), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

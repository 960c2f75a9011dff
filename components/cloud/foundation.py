"""AwsFoundation: the stack's account-level AWS pieces that the areas share.

Creates, when the stack has anything on AWS (the edge, or writers to S3):

* the log bucket `<name>-logs` (`llm-platform-<stack>-logs-<account>-<region>`, through
  `private_bucket`): S3 server access logs of every other bucket under `s3-access/` and the
  edge VPC's flow logs under `flow-logs/`, delivered by those two services only
  (`components.cloud.logs`), expiring after `aws.logs.retention_days`. It does not log
  itself (a log bucket logging into itself logs its own deliveries without end).
  Protected on prod.

Exposes `account_id` (the deploying account), `log_target` (None without the bucket) and
`issuer_url`: the service-account issuer the cluster signs tokens as when the writers use
web identity (`components.cloud.issuer`), else None. Expects the explicit `aws.Provider`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cloud import issuer, logs
from components.config import PlatformConfig
from components.s3_bucket import LogTarget, private_bucket


@dataclass(frozen=True, kw_only=True)
class AwsFoundationArgs:
    """Inputs of the foundation."""

    config: PlatformConfig
    provider: aws.Provider


class AwsFoundation(pulumi.ComponentResource):
    """The account id, the log bucket and the name of the cluster's token issuer."""

    account_id: pulumi.Output[str]
    log_target: LogTarget | None
    issuer_url: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: AwsFoundationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:cloud:AwsFoundation", name, None, opts)
        config = args.config
        region = config.aws.region
        stack = config.stack_name
        self.account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(provider=args.provider, parent=self)
        ).account_id
        self.log_target = None
        if config.edge_enabled or config.has_s3_writers:
            prod = config.is_prod
            account = self.account_id
            bucket = private_bucket(
                f"{name}-logs",
                bucket_name=account.apply(
                    lambda a: logs.log_bucket_name(stack=stack, account_id=a, region=region)
                ),
                tags={"Name": f"{name}-logs", "purpose": "logs"},
                lifecycle_rules=[
                    {
                        "id": "expire-logs",
                        "status": "Enabled",
                        "filter": {"prefix": ""},
                        "expiration": {"days": config.aws.logs.retention_days},
                    }
                ],
                log_target=None,
                policy_statements=lambda arn: account.apply(
                    lambda a: logs.delivery_statements(
                        arn, stack=stack, account_id=a, region=region
                    )
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.provider, protect=prod, retain_on_delete=prod
                ),
            )
            self.log_target = LogTarget(bucket=bucket.bucket)
        self.issuer_url = (
            self.account_id.apply(
                lambda a: issuer.issuer_url(stack=stack, account_id=a, region=region)
            )
            if config.uses_web_identity
            else None
        )
        self.register_outputs({"account_id": self.account_id})

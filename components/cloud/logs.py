"""The log bucket's policy: who may deliver logs into it (pure).

S3 server access logs arrive from `logging.s3.amazonaws.com` under `s3-access/`
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html),
VPC flow logs from `delivery.logs.amazonaws.com` under `flow-logs/`
(https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-permissions.html); each only
for sources in this account (and this stack's buckets).
"""

from __future__ import annotations

from typing import Any

from components.naming import bucket_name, stack_prefix
from components.s3_bucket import ACCESS_LOG_PREFIX, FLOW_LOG_PREFIX


def log_bucket_name(*, stack: str, account_id: str, region: str) -> str:
    """`llm-platform-<stack>-logs-<account>-<region>` (global S3 names)."""
    return bucket_name(stack=stack, purpose="logs", account_id=account_id, region=region)


def source_buckets(stack: str) -> str:
    """ARN pattern of the stack's buckets, the only ones that may log here."""
    return f"arn:aws:s3:::{stack_prefix(stack)}*"


def delivery_statements(
    bucket_arn: str, *, stack: str, account_id: str, region: str
) -> list[dict[str, Any]]:
    """Statements letting the two log services write their own prefixes, nothing else."""
    same_account = {"aws:SourceAccount": account_id}
    flow_logs_source = {"aws:SourceArn": f"arn:aws:logs:{region}:{account_id}:*"}
    return [
        {
            "Sid": "S3ServerAccessLogs",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{ACCESS_LOG_PREFIX}/*",
            "Condition": {
                "StringEquals": same_account,
                "ArnLike": {"aws:SourceArn": source_buckets(stack)},
            },
        },
        {
            "Sid": "FlowLogsWrite",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{FLOW_LOG_PREFIX}/AWSLogs/{account_id}/*",
            "Condition": {
                "StringEquals": {**same_account, "s3:x-amz-acl": "bucket-owner-full-control"},
                "ArnLike": flow_logs_source,
            },
        },
        {
            "Sid": "FlowLogsAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
            "Resource": bucket_arn,
            "Condition": {"StringEquals": same_account, "ArnLike": flow_logs_source},
        },
    ]

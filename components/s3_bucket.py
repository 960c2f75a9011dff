"""The one way the platform keeps data in S3: a private bucket and a user for one writer.

Postgres backups (LLM gateway) and vector DB snapshots (data layer) both land in S3 from
inside the cluster, where no instance role exists, so each gets:

* `private_bucket`: a bucket that no ACL or policy can make public, owned by the bucket
  owner only (ACLs off), encrypted at rest with S3 keys and a bucket key, optionally
  versioned, with the caller's lifecycle rules;
* `bucket_writer`: an IAM user whose only permission is the caller's policy document
  on that bucket, and its access key (the secret part marked secret in state).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pulumi
import pulumi_aws as aws

IAM_PATH = "/llm-platform/"


def private_bucket(
    prefix: str,
    *,
    bucket_name: pulumi.Input[str],
    tags: Mapping[str, str],
    lifecycle_rules: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgsDict],
    versioned: bool,
    opts: pulumi.ResourceOptions,
) -> aws.s3.Bucket:
    """The bucket `<prefix>` and its settings (`<prefix>-private`, `-ownership`, ...).

    `opts` carries parent, provider and any protection; the settings are the bucket's
    children.
    """
    bucket = aws.s3.Bucket(
        prefix, bucket=bucket_name, force_destroy=False, tags=dict(tags), opts=opts
    )
    on_bucket = pulumi.ResourceOptions(parent=bucket, provider=opts.provider)
    aws.s3.BucketPublicAccessBlock(
        f"{prefix}-private",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=on_bucket,
    )
    aws.s3.BucketOwnershipControls(
        f"{prefix}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=on_bucket,
    )
    lifecycle_deps: list[pulumi.Resource] = []
    if versioned:
        lifecycle_deps.append(
            aws.s3.BucketVersioning(
                f"{prefix}-versioning",
                bucket=bucket.id,
                versioning_configuration={"status": "Enabled"},
                opts=on_bucket,
            )
        )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{prefix}-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "bucket_key_enabled": True,
            }
        ],
        opts=on_bucket,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{prefix}-lifecycle",
        bucket=bucket.id,
        rules=list(lifecycle_rules),
        # S3 rejects noncurrent-version rules until versioning is on.
        opts=pulumi.ResourceOptions.merge(
            on_bucket, pulumi.ResourceOptions(depends_on=lifecycle_deps)
        ),
    )
    return bucket


def bucket_writer(
    prefix: str,
    *,
    bucket_name: pulumi.Input[str],
    policy_document: Callable[[str], str],
    opts: pulumi.ResourceOptions,
) -> aws.iam.AccessKey:
    """User `<prefix>-user` allowed `policy_document(bucket ARN)` only, and its key."""
    user = aws.iam.User(f"{prefix}-user", path=IAM_PATH, opts=opts)
    aws.iam.UserPolicy(
        f"{prefix}-policy",
        user=user.name,
        policy=pulumi.Output.concat("arn:aws:s3:::", bucket_name).apply(policy_document),
        opts=opts,
    )
    return aws.iam.AccessKey(
        f"{prefix}-key",
        user=user.name,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["secret"])
        ),
    )

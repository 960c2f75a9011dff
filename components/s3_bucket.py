"""The one way the platform keeps data in S3: a bucket with its guards, and one writer.

Postgres backups (LLM gateway), vector DB snapshots (data layer), the log bucket and the
cluster's service-account issuer all land in S3, each through `private_bucket` (or
`public_documents_bucket` for the issuer's two public documents), which makes:

* the bucket, owned by the bucket owner only (ACLs off), a public access block, default
  encryption with S3 keys and a bucket key;
* versioning, always: an overwrite or delete keeps the old version for `NONCURRENT_DAYS`,
  after which a bucket-wide lifecycle rule expires it, together with expired delete
  markers and incomplete multipart uploads; the caller's rules expire current versions;
* a bucket policy that denies every request without TLS (`aws:SecureTransport`), plus the
  caller's statements;
* server access logs to the stack's log bucket (`LogTarget`), except for the log bucket.

`bucket_writer` gives one in-cluster writer access to its bucket, by the stack's
`aws.backup_credentials.mode`: a role that only the writer's Kubernetes service account
may assume through the cluster's OIDC issuer (`web_identity`, the default), or an IAM user
and access key whose every permission holds only from `source_cidrs` and until
`rotate_by` (`static_keys`, opt-in). Either way the permissions are the caller's policy
document, scoped to the writer's prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cloud import policies
from components.config.aws import BackupCredentialsConfig

Statements = Callable[[str], pulumi.Input[Sequence[Mapping[str, Any]]]]
"""Extra bucket policy statements, given the bucket's ARN."""

IAM_PATH = "/llm-platform/"
NONCURRENT_DAYS = 7
"""How long an overwritten or deleted object stays recoverable."""
INCOMPLETE_UPLOAD_DAYS = 2
ACCESS_LOG_PREFIX = "s3-access"
FLOW_LOG_PREFIX = "flow-logs"
WRITER_SESSION_SECONDS = 3600


@dataclass(frozen=True, kw_only=True)
class LogTarget:
    """The stack's log bucket, where each bucket's server access logs go."""

    bucket: pulumi.Input[str]

    @staticmethod
    def prefix(bucket_logical_name: str) -> str:
        """Key prefix of one bucket's access logs in the log bucket."""
        return f"{ACCESS_LOG_PREFIX}/{bucket_logical_name}/"

    def flow_log_destination(self) -> pulumi.Output[str]:
        """Where VPC flow logs go: the `flow-logs/` prefix of the log bucket."""
        return pulumi.Output.concat("arn:aws:s3:::", self.bucket, f"/{FLOW_LOG_PREFIX}/")


@dataclass(frozen=True, kw_only=True)
class WorkloadIdentity:
    """AWS's trust in the cluster's service-account tokens (`ServiceAccountIssuer`)."""

    provider_arn: pulumi.Input[str]
    """The IAM OIDC provider of the cluster's issuer."""
    issuer_host: pulumi.Input[str]
    """The issuer URL without `https://`: the prefix of its condition keys."""


@dataclass(frozen=True, kw_only=True)
class WriterCredentials:
    """What the writer's pod needs: a role to assume, or (static keys) an access key."""

    role_arn: pulumi.Output[str] | None
    access_key: aws.iam.AccessKey | None


def housekeeping_rule() -> aws.s3.BucketLifecycleConfigurationRuleArgsDict:
    """The bucket-wide rule: old versions, expired delete markers and incomplete uploads."""
    return {
        "id": "housekeeping",
        "status": "Enabled",
        "filter": {},
        "expiration": {"expired_object_delete_marker": True},
        "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_DAYS},
        "abort_incomplete_multipart_upload": {"days_after_initiation": INCOMPLETE_UPLOAD_DAYS},
    }


def public_read(bucket_arn: str, keys: Sequence[str]) -> dict[str, Any]:
    """Anyone may read exactly these objects (and nothing else of the bucket)."""
    return {
        "Sid": "PublicDocuments",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": [f"{bucket_arn}/{key}" for key in keys],
    }


def private_bucket(
    prefix: str,
    *,
    bucket_name: pulumi.Input[str],
    tags: Mapping[str, str],
    lifecycle_rules: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgsDict],
    log_target: LogTarget | None,
    opts: pulumi.ResourceOptions,
    policy_statements: Statements = lambda _: (),
) -> aws.s3.Bucket:
    """The bucket `<prefix>` and its settings (`<prefix>-private`, `-ownership`, ...).

    `opts` carries parent, provider and any protection; the settings are the bucket's
    children. `policy_statements(bucket ARN)` are added after the TLS-only statement.
    """
    bucket, _ = _bucket(
        prefix,
        bucket_name=bucket_name,
        tags=tags,
        lifecycle_rules=lifecycle_rules,
        log_target=log_target,
        opts=opts,
        policy_statements=policy_statements,
        public=False,
    )
    return bucket


def public_documents_bucket(
    prefix: str,
    *,
    bucket_name: pulumi.Input[str],
    tags: Mapping[str, str],
    public_keys: Sequence[str],
    log_target: LogTarget | None,
    opts: pulumi.ResourceOptions,
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """A bucket like `private_bucket` whose objects `public_keys` anyone may read (over
    TLS): the public access block still blocks ACLs, only the policy grants the read.
    Returns the policy too: whatever reads the documents must wait for it."""
    return _bucket(
        prefix,
        bucket_name=bucket_name,
        tags=tags,
        lifecycle_rules=(),
        log_target=log_target,
        opts=opts,
        policy_statements=lambda arn: [public_read(arn, public_keys)],
        public=True,
    )


def _bucket(
    prefix: str,
    *,
    bucket_name: pulumi.Input[str],
    tags: Mapping[str, str],
    lifecycle_rules: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgsDict],
    log_target: LogTarget | None,
    opts: pulumi.ResourceOptions,
    policy_statements: Statements,
    public: bool,
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """`private_bucket`'s resources; `public` lets the policy (never an ACL) grant reads."""
    bucket = aws.s3.Bucket(
        prefix, bucket=bucket_name, force_destroy=False, tags=dict(tags), opts=opts
    )
    on_bucket = pulumi.ResourceOptions(parent=bucket, provider=opts.provider)
    block = aws.s3.BucketPublicAccessBlock(
        f"{prefix}-private",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=not public,
        ignore_public_acls=True,
        restrict_public_buckets=not public,
        opts=on_bucket,
    )
    aws.s3.BucketOwnershipControls(
        f"{prefix}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=on_bucket,
    )
    versioning = aws.s3.BucketVersioning(
        f"{prefix}-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=on_bucket,
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
        rules=[*lifecycle_rules, housekeeping_rule()],
        # S3 rejects noncurrent-version rules until versioning is on.
        opts=pulumi.ResourceOptions.merge(
            on_bucket, pulumi.ResourceOptions(depends_on=[versioning])
        ),
    )

    def policy_text(arn: str) -> pulumi.Input[str]:
        statements = pulumi.Output.from_input(policy_statements(arn))
        return statements.apply(lambda listed: policies.bucket_policy(arn, listed))

    policy = aws.s3.BucketPolicy(
        f"{prefix}-policy",
        bucket=bucket.id,
        policy=bucket.arn.apply(policy_text),
        # S3 refuses a public policy while the block still blocks public policies.
        opts=pulumi.ResourceOptions.merge(on_bucket, pulumi.ResourceOptions(depends_on=[block])),
    )
    if log_target is not None:
        aws.s3.BucketLogging(
            f"{prefix}-logging",
            bucket=bucket.id,
            target_bucket=log_target.bucket,
            target_prefix=LogTarget.prefix(prefix),
            opts=on_bucket,
        )
    return bucket, policy


def bucket_writer(
    prefix: str,
    *,
    bucket_name: pulumi.Input[str],
    policy_document: Callable[[str], str],
    credentials: BackupCredentialsConfig,
    identity: WorkloadIdentity | None,
    subject: str,
    opts: pulumi.ResourceOptions,
) -> WriterCredentials:
    """The writer's access, `policy_document(bucket ARN)` and nothing else.

    `web_identity`: role `<prefix>-role`, assumable only with a token of `subject`
    (`system:serviceaccount:<namespace>:<name>`) from the cluster's issuer `identity`.
    `static_keys`: user `<prefix>-user` and its key `<prefix>-key-<rotate_by>`, the policy
    bounded to the source ranges and the rotation date.
    """
    policy = pulumi.Output.concat("arn:aws:s3:::", bucket_name).apply(policy_document)
    if credentials.mode == "web_identity":
        if identity is None:
            raise ValueError(f"{prefix}: web_identity needs the cluster's WorkloadIdentity")
        trust = pulumi.Output.all(identity.provider_arn, identity.issuer_host).apply(
            lambda v: policies.web_identity_trust(
                provider_arn=v[0], issuer_host=v[1], subject=subject
            )
        )
        role = aws.iam.Role(
            f"{prefix}-role",
            path=IAM_PATH,
            assume_role_policy=trust,
            max_session_duration=WRITER_SESSION_SECONDS,
            opts=opts,
        )
        aws.iam.RolePolicy(f"{prefix}-policy", role=role.name, policy=policy, opts=opts)
        return WriterCredentials(role_arn=role.arn, access_key=None)
    static = credentials.static_keys
    assert static is not None  # the config requires it with static_keys
    user = aws.iam.User(f"{prefix}-user", path=IAM_PATH, opts=opts)
    aws.iam.UserPolicy(
        f"{prefix}-policy",
        user=user.name,
        policy=policy.apply(
            lambda text: policies.bounded(
                text, source_cidrs=static.source_cidrs, until=static.rotate_by
            )
        ),
        opts=opts,
    )
    key = aws.iam.AccessKey(
        # A new rotation date is a new key: created first, the old one deleted after.
        f"{prefix}-key-{static.rotate_by.isoformat()}",
        user=user.name,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["secret"])
        ),
    )
    return WriterCredentials(role_arn=None, access_key=key)


def writer_policy(
    bucket_arn: str, *, prefix: str, actions: Sequence[str], sid: str, list_sid: str
) -> str:
    """A writer's policy: list its bucket, and `actions` on the objects under `prefix/`."""
    return policies.document(
        [
            {
                "Sid": list_sid,
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [bucket_arn],
            },
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": list(actions),
                "Resource": [f"{bucket_arn}/{prefix}/*"],
            },
        ]
    )

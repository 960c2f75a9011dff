"""Names the platform gives things outside the cluster, from the stack's name.

S3 bucket names are global and at most 63 characters, so every bucket is
`llm-platform-<stack>-<purpose>-<account>-<region>`, and a stack's name must leave room for
the longest purpose (`stack_name_problem`, checked before anything is registered). The stack
name, not the tier, goes into names: two stacks of one tier in one account never collide.
"""

from __future__ import annotations

import re

PREFIX = "llm-platform"
BUCKET_PURPOSES = ("logs", "oidc", "pg-backups", "qdrant-snapshots")
"""Every purpose a stack's buckets are named for."""
S3_NAME_LIMIT = 63
ACCOUNT_ID_LENGTH = 12
STACK_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def bucket_name(*, stack: str, purpose: str, account_id: str, region: str) -> str:
    """`llm-platform-<stack>-<purpose>-<account>-<region>`."""
    return f"{PREFIX}-{stack}-{purpose}-{account_id}-{region}"


def stack_prefix(stack: str) -> str:
    """What every AWS name of the stack starts with (`llm-platform-<stack>-`)."""
    return f"{PREFIX}-{stack}-"


def stack_name_problem(stack: str, region: str) -> str | None:
    """Why a stack name cannot name the stack's AWS resources, or None."""
    if not STACK_NAME.fullmatch(stack):
        return (
            "the stack's name goes into S3 bucket names: use lower-case letters, digits and "
            "'-' (not at either end)"
        )
    longest = max(
        (
            bucket_name(stack=stack, purpose=p, account_id="0" * ACCOUNT_ID_LENGTH, region=region)
            for p in BUCKET_PURPOSES
        ),
        key=len,
    )
    if len(longest) > S3_NAME_LIMIT:
        room = S3_NAME_LIMIT - (len(longest) - len(stack))
        return (
            f"makes the S3 bucket name {longest!r} {len(longest)} characters long (S3 allows "
            f"{S3_NAME_LIMIT}): in region {region} a stack name may have {room} characters"
        )
    return None

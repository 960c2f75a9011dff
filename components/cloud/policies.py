"""IAM and bucket policy documents of the AWS side (pure functions of typed values).

Every bucket policy starts with `tls_only`; writer policies come from each area (they know
their prefix), and `bounded` narrows one to a source range and a date (static keys).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from ipaddress import IPv4Network
from typing import Any

VERSION = "2012-10-17"
STS_AUDIENCE = "sts.amazonaws.com"


def document(statements: Sequence[Mapping[str, Any]]) -> str:
    """A policy document as the text AWS takes (keys sorted, so renders diff cleanly)."""
    return json.dumps({"Version": VERSION, "Statement": list(statements)}, sort_keys=True)


def tls_only(bucket_arn: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not use TLS
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html)."""
    return {
        "Sid": "DenyPlainHttp",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def bucket_policy(bucket_arn: str, statements: Sequence[Mapping[str, Any]] = ()) -> str:
    """The bucket's policy: TLS only, then the caller's statements."""
    return document([tls_only(bucket_arn), *statements])


def bounded(policy: str, *, source_cidrs: Sequence[IPv4Network], until: date) -> str:
    """The policy with every Allow limited to `source_cidrs` and to before `until` 00:00 UTC,
    for a long-lived key: it works only from home, and stops on its rotation date."""
    parsed = json.loads(policy)
    statements = []
    for statement in parsed["Statement"]:
        if statement["Effect"] == "Allow":
            conditions = dict(statement.get("Condition", {}))
            conditions["IpAddress"] = {"aws:SourceIp": sorted(str(c) for c in source_cidrs)}
            conditions["DateLessThan"] = {"aws:CurrentTime": f"{until.isoformat()}T00:00:00Z"}
            statement = {**statement, "Condition": conditions}
        statements.append(statement)
    return document(statements)


def web_identity_trust(*, provider_arn: str, issuer_host: str, subject: str) -> str:
    """Trust policy of a writer's role: only the one service account's tokens, issued by
    the cluster for STS, may assume it
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html)."""
    return document(
        [
            {
                "Sid": "ServiceAccountToken",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host}:aud": STS_AUDIENCE,
                        f"{issuer_host}:sub": subject,
                    }
                },
            }
        ]
    )


def service_account_subject(namespace: str, service_account: str) -> str:
    """The `sub` claim of a Kubernetes service-account token."""
    return f"system:serviceaccount:{namespace}:{service_account}"

"""Every bucket of each stack, checked from the plan: versioned, old versions expiring, TLS
only, access-logged, private (the issuer's two documents excepted), and each writer able
to write only where a lifecycle rule expires what it wrote."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.cloud.issuer import DISCOVERY_KEY, JWKS_KEY
from components.s3_bucket import NONCURRENT_DAYS
from tests.support import STACKS, committed_stack_run
from tools.iam import Decision, Request, evaluate
from tools.mock_engine import ACCOUNT, ProgramRun, RecordedResource, autoname

BUCKET = "aws:s3/bucket:Bucket"
ANYONE = "*"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/administrator"


def _buckets(run: ProgramRun) -> dict[str, dict[str, RecordedResource]]:
    """Bucket name → its resources by kind (`bucket`, `versioning`, `lifecycle`, ...)."""
    kinds = {
        "aws:s3/bucketVersioning:BucketVersioning": "versioning",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "lifecycle",
        "aws:s3/bucketPolicy:BucketPolicy": "policy",
        "aws:s3/bucketLogging:BucketLogging": "logging",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "block",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
            "encryption"
        ),
    }
    found: dict[str, dict[str, RecordedResource]] = {
        r.inputs["bucket"]: {"bucket": r} for r in run.of_type(BUCKET)
    }
    for resource in run.resources:
        kind = kinds.get(resource.type)
        if kind is not None:
            assert kind not in found[resource.inputs["bucket"]], (kind, resource.name)
            found[resource.inputs["bucket"]][kind] = resource
    return found


def _log_bucket(buckets: Mapping[str, Any]) -> str:
    (name,) = [n for n in buckets if "-logs-" in n]
    return name


def _bucket_policy(parts: Mapping[str, RecordedResource]) -> str:
    policy: str = parts["policy"].inputs["policy"]
    return policy


def _request(action: str, resource: str, principal: str, *, tls: bool) -> Request:
    return Request(action, resource, principal, {"aws:SecureTransport": str(tls).lower()})


@pytest.mark.parametrize("stack", STACKS)
def test_every_bucket_is_versioned_and_its_old_versions_expire(stack: str) -> None:
    buckets = _buckets(committed_stack_run(stack))
    assert buckets, "the stack has a log bucket at least"
    for name, parts in buckets.items():
        assert parts["versioning"].inputs["versioningConfiguration"]["status"] == "Enabled", name
        rules = [r for r in parts["lifecycle"].inputs["rules"] if r["status"] == "Enabled"]
        whole = [r for r in rules if not r["filter"].get("prefix")]
        assert any(
            r.get("noncurrentVersionExpiration", {}).get("noncurrentDays") == NONCURRENT_DAYS
            and r.get("abortIncompleteMultipartUpload", {}).get("daysAfterInitiation")
            and r.get("expiration", {}).get("expiredObjectDeleteMarker") is True
            for r in whole
        ), name
        encryption = parts["encryption"].inputs["rules"][0]
        assert encryption["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"


@pytest.mark.parametrize("stack", STACKS)
def test_every_bucket_refuses_plain_http_whoever_asks(stack: str) -> None:
    for name, parts in _buckets(committed_stack_run(stack)).items():
        policy = _bucket_policy(parts)
        admin = [
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ]
        for action, resource in (
            ("s3:GetObject", f"arn:aws:s3:::{name}/any/key"),
            ("s3:PutObject", f"arn:aws:s3:::{name}/{DISCOVERY_KEY}"),
            ("s3:ListBucket", f"arn:aws:s3:::{name}"),
        ):
            for principal, identity in ((ADMIN, admin), (ANYONE, [])):
                plain = _request(action, resource, principal, tls=False)
                assert evaluate(plain, identity, policy).decision is Decision.EXPLICIT_DENY, (
                    name,
                    action,
                    principal,
                )
        # over TLS an administrator of the account is not locked out
        tls = _request("s3:GetObject", f"arn:aws:s3:::{name}/k", ADMIN, tls=True)
        assert evaluate(tls, admin, policy).decision is Decision.ALLOW


@pytest.mark.parametrize("stack", STACKS)
def test_every_bucket_but_the_log_bucket_logs_access_to_it(stack: str) -> None:
    buckets = _buckets(committed_stack_run(stack))
    logs = _log_bucket(buckets)
    for name, parts in buckets.items():
        if name == logs:
            assert "logging" not in parts
            continue
        logging = parts["logging"].inputs
        assert logging["targetBucket"] == logs
        assert logging["targetPrefix"] == f"s3-access/{parts['bucket'].name}/"
    (lifecycle,) = buckets[logs]["lifecycle"].inputs["rules"][:1]
    assert lifecycle["expiration"]["days"] > 0 and lifecycle["filter"] == {"prefix": ""}


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_log_services_write_to_the_log_bucket_and_only_their_prefix(stack: str) -> None:
    buckets = _buckets(committed_stack_run(stack))
    logs = _log_bucket(buckets)
    policy = _bucket_policy(buckets[logs])
    region = "eu-west-1"
    own_bucket = f"arn:aws:s3:::llm-platform-{stack}-pg-backups-{ACCOUNT}-{region}"
    access = "service:logging.s3.amazonaws.com"
    flows = "service:delivery.logs.amazonaws.com"

    def put(principal: str, key: str, **context: str) -> Decision:
        request = Request(
            "s3:PutObject",
            f"arn:aws:s3:::{logs}/{key}",
            principal,
            {"aws:SecureTransport": "true", "aws:SourceAccount": ACCOUNT, **context},
        )
        return evaluate(request, [], policy).decision

    assert put(access, "s3-access/x/log", **{"aws:SourceArn": own_bucket}) is Decision.ALLOW
    assert put(access, "flow-logs/x", **{"aws:SourceArn": own_bucket}) is Decision.IMPLICIT_DENY
    foreign = "arn:aws:s3:::someone-elses-bucket"
    assert put(access, "s3-access/x/log", **{"aws:SourceArn": foreign}) is Decision.IMPLICIT_DENY
    flow_source = {"aws:SourceArn": f"arn:aws:logs:{region}:{ACCOUNT}:*"}
    acl = {"s3:x-amz-acl": "bucket-owner-full-control"}
    key = f"flow-logs/AWSLogs/{ACCOUNT}/vpcflowlogs/{region}/2026/01/01/f.log.gz"
    assert put(flows, key, **flow_source, **acl) is Decision.ALLOW
    assert put(flows, "s3-access/x", **flow_source, **acl) is Decision.IMPLICIT_DENY
    assert put("service:cloudtrail.amazonaws.com", key, **flow_source, **acl) is (
        Decision.IMPLICIT_DENY
    )


def test_the_issuer_bucket_serves_exactly_its_two_documents_to_anyone() -> None:
    run = committed_stack_run("prod")
    (name,) = [n for n in _buckets(run) if "-oidc-" in n]
    parts = _buckets(run)[name]
    policy = _bucket_policy(parts)

    def anonymous(action: str, key: str) -> Decision:
        request = _request(action, f"arn:aws:s3:::{name}/{key}", ANYONE, tls=True)
        return evaluate(request, [], policy).decision

    assert anonymous("s3:GetObject", DISCOVERY_KEY) is Decision.ALLOW
    assert anonymous("s3:GetObject", JWKS_KEY) is Decision.ALLOW
    for key in ("openid/v1/jwks2", "other", ".well-known/other"):
        assert anonymous("s3:GetObject", key) is Decision.IMPLICIT_DENY
    assert anonymous("s3:PutObject", JWKS_KEY) is Decision.IMPLICIT_DENY
    block = parts["block"].inputs
    assert block["blockPublicAcls"] is True and block["ignorePublicAcls"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_every_other_bucket_is_fully_private(stack: str) -> None:
    for name, parts in _buckets(committed_stack_run(stack)).items():
        if "-oidc-" in name:
            continue
        block = parts["block"].inputs
        assert all(
            block[k] is True
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        ), name
        statements = json.loads(_bucket_policy(parts))["Statement"]
        assert not [s for s in statements if s["Effect"] == "Allow" and s.get("Principal") == "*"]


def _writers(run: ProgramRun) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(role ARN, bucket, enabled lifecycle rules) of each role that reaches a bucket."""
    buckets = _buckets(run)
    found = []
    for policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        text = policy.inputs["policy"]
        for name, parts in buckets.items():
            if f"arn:aws:s3:::{name}" in text:
                (role,) = [
                    r
                    for r in run.of_type("aws:iam/role:Role")
                    if autoname(r.name) == policy.inputs["role"]
                ]
                arn = f"arn:aws:iam::{ACCOUNT}:role{role.inputs.get('path', '/')}{autoname(role.name)}"
                rules = [r for r in parts["lifecycle"].inputs["rules"] if r["status"] == "Enabled"]
                found.append((arn, name, rules))
    return found


def test_prod_has_its_two_writers_and_dev_none() -> None:
    assert sorted(b.split("-")[3] for _, b, _ in _writers(committed_stack_run("prod"))) == [
        "pg",
        "qdrant",
    ]
    assert _writers(committed_stack_run("dev")) == []


KEYS = st.one_of(
    st.sampled_from(["litellm-db/", "qdrant/", "", "litellm-db", "Qdrant/", "../", "/"]),
    st.text(alphabet="abq-/.", max_size=6),
).flatmap(
    lambda head: st.text(alphabet="abcdef/._-0123456789", max_size=24).map(lambda t: head + t)
)


@settings(max_examples=300, deadline=None)
@given(key=KEYS)
def test_a_writer_writes_only_where_a_rule_expires_what_it_wrote(key: str) -> None:
    for role, bucket, rules in _writers(committed_stack_run("prod")):
        run = committed_stack_run("prod")
        policies = [p.inputs["policy"] for p in run.of_type("aws:iam/rolePolicy:RolePolicy")]
        request = _request("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", role, tls=True)
        allowed = evaluate(request, policies).decision is Decision.ALLOW
        expiring = any(
            key.startswith(r["filter"]["prefix"]) and r.get("expiration", {}).get("days")
            for r in rules
            if r["filter"].get("prefix")
        )
        assert not allowed or expiring, (role, key)


def test_writers_reach_their_own_prefix_and_nothing_destructive() -> None:
    run = committed_stack_run("prod")
    policies = [p.inputs["policy"] for p in run.of_type("aws:iam/rolePolicy:RolePolicy")]
    for role, bucket, rules in _writers(run):
        (prefix,) = [r["filter"]["prefix"] for r in rules if r["filter"].get("prefix")]
        own = f"arn:aws:s3:::{bucket}/{prefix}x"
        assert evaluate(_request("s3:PutObject", own, role, tls=True), policies).decision is (
            Decision.ALLOW
        )
        for action in (
            "s3:DeleteObjectVersion",
            "s3:PutBucketPolicy",
            "s3:PutLifecycleConfiguration",
        ):
            target = own if "Object" in action else f"arn:aws:s3:::{bucket}"
            assert evaluate(_request(action, target, role, tls=True), policies).decision is (
                Decision.IMPLICIT_DENY
            ), (role, action)
        for other_bucket in _buckets(run):
            if other_bucket != bucket:
                other = f"arn:aws:s3:::{other_bucket}/{prefix}x"
                assert evaluate(
                    _request("s3:PutObject", other, role, tls=True), policies
                ).decision is (Decision.IMPLICIT_DENY)

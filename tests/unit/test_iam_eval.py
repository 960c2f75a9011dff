"""The IAM evaluator itself, on the cases a careless evaluator gets wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tools.iam import (
    Decision,
    Request,
    UnsupportedPolicyError,
    evaluate,
    managed_policy,
    role_policies,
    wildcard_match,
)

ROLE = "arn:aws:iam::111122223333:role/app"
OTHER_ROLE = "arn:aws:iam::111122223333:role/other"
ROOT = "arn:aws:iam::111122223333:root"
PARAM = "arn:aws:ssm:eu-west-1:111122223333:parameter/app/key"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(action: str, resource: str, *policies: Any, **context: str) -> Decision:
    return evaluate(Request(action, resource, ROLE, context), policies).decision


def test_an_explicit_deny_wins_over_any_allow_in_any_order() -> None:
    for statements in ([allow("s3:*"), deny("s3:PutObject")], [deny("s3:PutObject"), allow("*")]):
        assert (
            decide("s3:PutObject", "arn:aws:s3:::b/k", doc(*statements)) is Decision.EXPLICIT_DENY
        )
    # ... also across policies
    assert (
        decide("s3:PutObject", "arn:aws:s3:::b/k", doc(allow("*")), doc(deny("s3:Put*")))
        is Decision.EXPLICIT_DENY
    )
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", doc(allow("*")), doc(deny("s3:Put*"))) is (
        Decision.ALLOW
    )


def test_nothing_allowed_is_an_implicit_deny() -> None:
    assert decide("s3:GetObject", "arn:aws:s3:::b/k") is Decision.IMPLICIT_DENY
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", doc(allow("s3:PutObject"))) is (
        Decision.IMPLICIT_DENY
    )


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert decide("SSM:getPARAMETER", PARAM, doc(allow("ssm:GetParameter"))) is Decision.ALLOW
    policy = doc(allow("ssm:GetParameter*"))
    for action in ("ssm:GetParameter", "ssm:GetParametersByPath", "ssm:GetParameterHistory"):
        assert decide(action, PARAM, policy) is Decision.ALLOW
    assert decide("ssm:DescribeParameters", PARAM, policy) is Decision.IMPLICIT_DENY
    assert decide("ssm:GetParameters", PARAM, doc(allow("ssm:GetParameter?"))) is Decision.ALLOW
    assert decide("ssm:GetParametersX", PARAM, doc(allow("ssm:GetParameter?"))) is (
        Decision.IMPLICIT_DENY
    )
    # a service prefix is not a wildcard
    assert decide("ssmmessages:OpenDataChannel", "*", doc(allow("ssm:*"))) is Decision.IMPLICIT_DENY


def test_resources_match_case_sensitively_and_star_spans_slashes() -> None:
    policy = doc(allow("ssm:GetParameter", "arn:aws:ssm:*:111122223333:parameter/app/*"))
    assert decide("ssm:GetParameter", PARAM, policy) is Decision.ALLOW
    assert decide("ssm:GetParameter", PARAM + "/deeper/still", policy) is Decision.ALLOW
    assert decide("ssm:GetParameter", PARAM.replace("/app/", "/App/"), policy) is (
        Decision.IMPLICIT_DENY
    )
    other_account = PARAM.replace("111122223333", "444455556666")
    assert decide("ssm:GetParameter", other_account, policy) is Decision.IMPLICIT_DENY
    # a pattern is anchored at both ends
    assert not wildcard_match("parameter/app", "parameter/app/key")
    assert not wildcard_match("arn:aws:s3:::b", "arn:aws:s3:::bb")
    # regex characters in a pattern are literal
    assert not wildcard_match("a.c", "abc")


def test_not_action_and_not_resource_invert_the_match() -> None:
    everything_but_iam = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide("s3:GetObject", "x", everything_but_iam) is Decision.ALLOW
    assert decide("iam:PassRole", "x", everything_but_iam) is Decision.IMPLICIT_DENY
    fence = doc(
        allow("ssm:GetParameter*"),
        {"Effect": "Deny", "Action": "ssm:GetParameter*", "NotResource": [PARAM]},
    )
    assert decide("ssm:GetParameter", PARAM, fence) is Decision.ALLOW
    assert decide("ssm:GetParameter", PARAM + "2", fence) is Decision.EXPLICIT_DENY
    assert decide("ssm:GetParametersByPath", "arn:aws:ssm:eu-west-1:1:parameter/", fence) is (
        Decision.EXPLICIT_DENY
    )


def test_conditions_and_across_keys_or_across_values_and_missing_keys() -> None:
    both = doc(
        allow(
            "kms:Decrypt",
            Condition={
                "StringEquals": {
                    "kms:ViaService": "ssm.eu-west-1.amazonaws.com",
                    "kms:EncryptionContext:PARAMETER_ARN": [PARAM, PARAM + "2"],
                }
            },
        )
    )
    via = "ssm.eu-west-1.amazonaws.com"
    key = "arn:aws:kms:eu-west-1:111122223333:key/k"
    ctx = "kms:EncryptionContext:PARAMETER_ARN"
    assert decide("kms:Decrypt", key, both, **{"kms:ViaService": via, ctx: PARAM + "2"}) is (
        Decision.ALLOW
    )
    assert decide("kms:Decrypt", key, both, **{"kms:ViaService": via, ctx: PARAM + "3"}) is (
        Decision.IMPLICIT_DENY
    )
    assert decide("kms:Decrypt", key, both, **{ctx: PARAM}) is Decision.IMPLICIT_DENY
    # condition key names are case-insensitive, values are not
    assert decide("kms:Decrypt", key, both, **{"KMS:VIASERVICE": via, ctx: PARAM}) is (
        Decision.ALLOW
    )
    assert decide("kms:Decrypt", key, both, **{"kms:ViaService": via.upper(), ctx: PARAM}) is (
        Decision.IMPLICIT_DENY
    )
    # a negated operator holds when the key is absent
    not_equal = doc(allow("s3:*", Condition={"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}))
    assert decide("s3:GetObject", "x", not_equal) is Decision.ALLOW
    assert decide("s3:GetObject", "x", not_equal, **{"aws:SourceVpc": "vpc-1"}) is (
        Decision.IMPLICIT_DENY
    )


def test_the_tls_only_deny_applies_to_plain_http_only() -> None:
    policy = doc(
        allow("s3:GetObject"),
        deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}}),
    )
    assert decide("s3:GetObject", "x", policy, **{"aws:SecureTransport": "true"}) is (
        Decision.ALLOW
    )
    assert decide("s3:GetObject", "x", policy, **{"aws:SecureTransport": "false"}) is (
        Decision.EXPLICIT_DENY
    )


def test_source_address_and_date_conditions() -> None:
    policy = doc(
        allow(
            "s3:PutObject",
            Condition={
                "IpAddress": {"aws:SourceIp": ["198.51.100.7/32", "203.0.113.0/24"]},
                "DateLessThan": {"aws:CurrentTime": "2026-03-01T00:00:00Z"},
            },
        )
    )
    early = "2026-02-28T23:59:59Z"
    assert decide(
        "s3:PutObject", "x", policy, **{"aws:SourceIp": "203.0.113.99", "aws:CurrentTime": early}
    ) is (Decision.ALLOW)
    assert decide(
        "s3:PutObject", "x", policy, **{"aws:SourceIp": "198.51.100.8", "aws:CurrentTime": early}
    ) is (Decision.IMPLICIT_DENY)
    assert decide(
        "s3:PutObject",
        "x",
        policy,
        **{"aws:SourceIp": "198.51.100.7", "aws:CurrentTime": "2026-03-01T00:00:00Z"},
    ) is (Decision.IMPLICIT_DENY)


def test_arn_like_matches_each_arn_part_on_its_own() -> None:
    policy = doc(allow("s3:PutObject", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:logs:*"}}))
    # six parts are required: `arn:aws:logs:*` has four and matches nothing
    assert (
        decide("s3:PutObject", "x", policy, **{"aws:SourceArn": "arn:aws:logs:eu-west-1:1:x"})
        is Decision.IMPLICIT_DENY
    )
    policy = doc(
        allow(
            "s3:PutObject",
            Condition={"ArnLike": {"aws:SourceArn": "arn:aws:logs:eu-west-1:111122223333:*"}},
        )
    )
    good = "arn:aws:logs:eu-west-1:111122223333:log-group:a:b"
    assert decide("s3:PutObject", "x", policy, **{"aws:SourceArn": good}) is Decision.ALLOW
    bad = good.replace("111122223333", "444455556666")
    assert decide("s3:PutObject", "x", policy, **{"aws:SourceArn": bad}) is (Decision.IMPLICIT_DENY)


def test_a_key_policy_must_name_the_principal_or_delegate_to_the_account() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/k"
    request = Request("kms:Decrypt", key, OTHER_ROLE)
    iam_allows = doc(allow("kms:*"))
    only_app = doc({**allow("kms:Decrypt"), "Principal": {"AWS": ROLE}})
    delegating = doc({**allow("kms:*"), "Principal": {"AWS": ROOT}})
    assert evaluate(request, [iam_allows], only_app, key_policy=True).decision is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate(request, [], delegating, key_policy=True).decision is Decision.IMPLICIT_DENY
    assert evaluate(request, [iam_allows], delegating, key_policy=True).decision is Decision.ALLOW
    app = Request("kms:Decrypt", key, ROLE)
    assert evaluate(app, [], only_app, key_policy=True).decision is Decision.ALLOW
    # a bucket policy in the same account is enough on its own, a key policy for the account is not
    bucket = doc({**allow("s3:GetObject"), "Principal": {"AWS": ROLE}})
    assert evaluate(Request("s3:GetObject", "x", ROLE), [], bucket).decision is Decision.ALLOW
    assert evaluate(Request("s3:GetObject", "x", OTHER_ROLE), [], bucket).decision is (
        Decision.IMPLICIT_DENY
    )


def test_another_accounts_resource_needs_its_own_resource_policy_too() -> None:
    theirs = "arn:aws:ssm:eu-west-1:444455556666:parameter/app/key"
    assert decide("ssm:GetParameter", theirs, doc(allow("ssm:*"))) is Decision.IMPLICIT_DENY
    shared = doc({**allow("ssm:GetParameter"), "Principal": {"AWS": ROLE}})
    request = Request("ssm:GetParameter", theirs, ROLE)
    assert evaluate(request, [doc(allow("ssm:*"))], shared).decision is Decision.ALLOW
    assert evaluate(request, [], shared).decision is Decision.IMPLICIT_DENY
    # S3 ARNs name no account: the bucket is taken to be the principal's
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", doc(allow("s3:*"))) is Decision.ALLOW


def test_a_resource_policy_deny_for_everyone_binds_every_principal() -> None:
    bucket = doc({**deny("s3:*"), "Principal": "*"})
    assert evaluate(Request("s3:GetObject", "x", ROLE), [doc(allow("*"))], bucket).decision is (
        Decision.EXPLICIT_DENY
    )
    service = Request("s3:PutObject", "x", "service:logging.s3.amazonaws.com")
    logs = doc({**allow("s3:PutObject"), "Principal": {"Service": "logging.s3.amazonaws.com"}})
    assert evaluate(service, [], logs).decision is Decision.ALLOW
    assert evaluate(Request("s3:PutObject", "x", ROLE), [], logs).decision is (
        Decision.IMPLICIT_DENY
    )


@pytest.mark.parametrize(
    "statement",
    [
        allow("s3:*", Condition={"StringEqualsIfExists": {"aws:SourceVpc": "v"}}),
        allow("s3:*", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": "t"}}),
        allow("s3:*", Condition={"NumericLessThan": {"s3:max-keys": "10"}}),
        allow("s3:*", "arn:aws:s3:::${aws:username}/*"),
        {"Effect": "Allow", "Action": "s3:*"},
        {"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Maybe", "Action": "s3:*", "Resource": "*"},
        {**allow("s3:*"), "Principal": "*"},
    ],
)
def test_what_the_evaluator_does_not_implement_is_refused(statement: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedPolicyError):
        decide("s3:GetObject", "arn:aws:s3:::b/u", doc(statement))


def test_not_principal_and_old_versions_are_refused() -> None:
    with pytest.raises(UnsupportedPolicyError):
        evaluate(
            Request("s3:GetObject", "x", ROLE),
            [],
            doc({**allow("s3:*"), "NotPrincipal": {"AWS": ROLE}}),
        )
    with pytest.raises(UnsupportedPolicyError):
        decide("s3:GetObject", "x", {"Version": "2008-10-17", "Statement": [allow("*")]})


def test_a_policy_may_be_json_text_with_a_single_statement_object() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": allow("s3:GetObject", "x")})
    assert decide("s3:GetObject", "x", text) is Decision.ALLOW


def test_managed_policies_expand_from_their_vendored_copy_and_nothing_else() -> None:
    core = managed_policy("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    assert core["PolicyVersion"]["VersionId"] == "v2"
    assert core["Source"].startswith("https://docs.aws.amazon.com/aws-managed-policy/")
    document = core["PolicyVersion"]["Document"]
    # what issue 23 found: this managed policy alone reads every parameter of the region
    assert decide("ssm:GetParameter", PARAM, document) is Decision.ALLOW
    resources = [
        {
            "type": "aws:iam/rolePolicy:RolePolicy",
            "name": "i",
            "inputs": {"role": "app", "policy": doc(allow("s3:x"))},
        },
        {
            "type": "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "name": "a",
            "inputs": {"role": "app", "policyArn": core["Arn"]},
        },
        {
            "type": "aws:iam/rolePolicy:RolePolicy",
            "name": "o",
            "inputs": {"role": "other", "policy": "{}"},
        },
    ]
    assert role_policies(resources, "app") == [doc(allow("s3:x")), document]
    unknown = [
        {
            "type": "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "name": "a",
            "inputs": {"role": "app", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        }
    ]
    with pytest.raises(KeyError, match="no vendored copy"):
        role_policies(unknown, "app")

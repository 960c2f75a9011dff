"""A small IAM policy evaluator: what a principal may do, from the policy documents alone.

It follows AWS's policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny in any applicable policy wins; otherwise an Allow in an identity policy,
or in a resource policy that names the principal, allows; otherwise the request is
implicitly denied. A resource whose ARN names another account than the principal's needs
both: an identity Allow and that account's resource policy naming the principal. KMS keys differ: a key policy must allow the principal itself, or
allow the account (its `root` principal) so that identity policies count
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).

Supported: `Effect`, `Action`/`NotAction` (case-insensitive, `*` and `?`),
`Resource`/`NotResource` (case-sensitive, `*` and `?`), `Principal` (`*`, `AWS`,
`Service`, `Federated`), and the condition operators the platform's policies use:
`StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`,
`ArnNotLike`, `Bool`, `IpAddress`, `NotIpAddress`, `DateLessThan`, `DateGreaterThan`.
Anything else (`NotPrincipal`, `...IfExists`, `ForAnyValue:`/`ForAllValues:`, policy
variables, another operator) raises `UnsupportedPolicyError`: the evaluator never guesses.
Not modelled: permission boundaries, session policies, SCPs (the platform uses none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cache
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

MANAGED_POLICIES = Path(__file__).resolve().parent / "aws_managed_policies"
"""Vendored AWS managed policies, one `<name>.json` each (see `managed_policy`)."""


class UnsupportedPolicyError(ValueError):
    """The document uses something the evaluator does not implement."""


class Decision(Enum):
    """Outcome of an evaluation."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Request:
    """One API call: who, what, on what, and the request context's condition keys."""

    action: str
    resource: str
    principal: str = ""
    """ARN of the calling principal (a role, a user, `service:<name>`, or `*` anonymous)."""
    context: Mapping[str, str] = field(default_factory=dict)
    """Condition keys of the request (single-valued; key names are case-insensitive)."""


Policy = Mapping[str, Any] | str


def _document(policy: Policy) -> Mapping[str, Any]:
    document: Mapping[str, Any] = json.loads(policy) if isinstance(policy, str) else policy
    if document.get("Version") != "2012-10-17":
        raise UnsupportedPolicyError(
            f"policy version {document.get('Version')!r} (only 2012-10-17)"
        )
    return document


def _statements(policy: Policy) -> list[Mapping[str, Any]]:
    statements = _document(policy)["Statement"]
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@cache
def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    if "${" in pattern:
        raise UnsupportedPolicyError(f"policy variable in {pattern!r}")
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters (`/` and `:` included), `?` one."""
    return _wildcard(pattern, ignore_case=ignore_case).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike compares each of the six colon-separated parts on its own."""
    patterns, values = pattern.split(":", 5), value.split(":", 5)
    return len(patterns) == len(values) == 6 and all(
        wildcard_match(p, v) for p, v in zip(patterns, values, strict=True)
    )


def _ip_in(cidr: str, value: str) -> bool:
    return ip_address(value) in ip_network(cidr, strict=False)


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    # operator: (does the policy value match the request value, is the operator negated)
    "StringEquals": (lambda policy, value: policy == value, False),
    "StringNotEquals": (lambda policy, value: policy == value, True),
    "StringLike": (wildcard_match, False),
    "StringNotLike": (wildcard_match, True),
    "ArnEquals": (lambda policy, value: policy == value, False),
    "ArnLike": (_arn_like, False),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda policy, value: policy.lower() == value.lower(), False),
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
    "DateLessThan": (lambda policy, value: _date(value) < _date(policy), False),
    "DateGreaterThan": (lambda policy, value: _date(value) > _date(policy), False),
}


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    """Every operator and every key holds; a key holds when any of its values matches.

    A key absent from the request matches nothing; for a negated operator that makes the
    condition true (AWS: "the values do not match").
    """
    keys = {k.lower(): v for k, v in context.items()}
    for operator, entries in conditions.items():
        if operator not in _OPERATORS:
            raise UnsupportedPolicyError(f"condition operator {operator!r}")
        matches, negated = _OPERATORS[operator]
        for key, values in entries.items():
            value = keys.get(key.lower())
            if not isinstance(value, str | type(None)):
                raise UnsupportedPolicyError(f"multi-valued condition key {key!r}")
            found = value is not None and any(matches(str(v), value) for v in _as_list(values))
            if found == negated:
                return False
    return True


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if ("Action" in statement) == ("NotAction" in statement):
        raise UnsupportedPolicyError("a statement needs exactly one of Action and NotAction")
    listed = _as_list(statement.get("Action", statement.get("NotAction")))
    hit = any(wildcard_match(a, action, ignore_case=True) for a in listed)
    return hit if "Action" in statement else not hit


def _resource_matches(statement: Mapping[str, Any], resource: str, *, optional: bool) -> bool:
    if "Resource" in statement and "NotResource" in statement:
        raise UnsupportedPolicyError("a statement has both Resource and NotResource")
    if "Resource" not in statement and "NotResource" not in statement:
        if optional:
            return True
        raise UnsupportedPolicyError("a statement needs Resource or NotResource")
    listed = _as_list(statement.get("Resource", statement.get("NotResource")))
    hit = any(wildcard_match(r, resource) for r in listed)
    return hit if "Resource" in statement else not hit


def account_of(arn: str) -> str:
    """The account of an IAM or STS ARN (empty for services and anonymous callers)."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[2] in ("iam", "sts") else ""


def _principal_match(statement: Mapping[str, Any], principal: str) -> str | None:
    """`direct` when the statement names the principal (or `*`), `account` when it names
    the principal's account (which then defers to its identity policies), else None."""
    if "NotPrincipal" in statement:
        raise UnsupportedPolicyError("NotPrincipal")
    if "Principal" not in statement:
        raise UnsupportedPolicyError("a resource policy statement needs a Principal")
    named = statement["Principal"]
    if named == "*":
        return "direct"
    listed: list[str] = []
    for kind, values in named.items():
        if kind not in ("AWS", "Service", "Federated"):
            raise UnsupportedPolicyError(f"principal kind {kind!r}")
        listed += [f"service:{v}" if kind == "Service" else v for v in _as_list(values)]
    if "*" in listed or principal in listed:
        return "direct"
    account = account_of(principal)
    if account and (account in listed or f"arn:aws:iam::{account}:root" in listed):
        return "account"
    return None


def _resource_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else ""


@dataclass(frozen=True)
class Evaluation:
    """The decision and the statements that made it (by Sid, or index when unnamed)."""

    decision: Decision
    because: tuple[str, ...] = ()


def _applicable(
    policies: Sequence[Policy],
    request: Request,
    *,
    resource_policy: bool,
    resource_optional: bool = False,
) -> list[tuple[str, str, str | None]]:
    """(effect, statement name, principal match) of each statement that applies."""
    found = []
    for p_index, policy in enumerate(policies):
        for s_index, statement in enumerate(_statements(policy)):
            effect = statement.get("Effect")
            if effect not in ("Allow", "Deny"):
                raise UnsupportedPolicyError(f"effect {effect!r}")
            match = _principal_match(statement, request.principal) if resource_policy else None
            if resource_policy and match is None:
                continue
            if not resource_policy and "Principal" in statement:
                raise UnsupportedPolicyError("an identity policy names a Principal")
            if not _action_matches(statement, request.action):
                continue
            if not _resource_matches(statement, request.resource, optional=resource_optional):
                continue
            if not _conditions_hold(statement.get("Condition", {}), request.context):
                continue
            found.append((effect, str(statement.get("Sid", f"#{p_index}.{s_index}")), match))
    return found


def evaluate(
    request: Request,
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    *,
    key_policy: bool = False,
    trust_policy: bool = False,
) -> Evaluation:
    """Whether `request` is allowed, within one account.

    `resource_policy` is the bucket policy, key policy (`key_policy=True`) or trust policy
    (`trust_policy=True`: statements may leave out Resource) of the resource, if any.
    """
    identity = _applicable(identity_policies, request, resource_policy=False)
    resource = (
        _applicable(
            [resource_policy], request, resource_policy=True, resource_optional=trust_policy
        )
        if resource_policy is not None
        else []
    )
    denies = [name for effect, name, _ in identity + resource if effect == "Deny"]
    if denies:
        return Evaluation(Decision.EXPLICIT_DENY, tuple(denies))
    identity_allows = [name for effect, name, _ in identity if effect == "Allow"]
    direct = [name for effect, name, m in resource if effect == "Allow" and m == "direct"]
    via_account = [name for effect, name, m in resource if effect == "Allow" and m == "account"]
    resource_account = _resource_account(request.resource)
    principal_account = account_of(request.principal)
    if resource_account and principal_account and resource_account != principal_account:
        if identity_allows and direct:
            return Evaluation(Decision.ALLOW, tuple(identity_allows + direct))
        return Evaluation(Decision.IMPLICIT_DENY)
    if key_policy or trust_policy:
        # The key (or trust) policy decides; naming the account lets identity policies count.
        if direct:
            return Evaluation(Decision.ALLOW, tuple(direct))
        if via_account and identity_allows:
            return Evaluation(Decision.ALLOW, tuple(via_account + identity_allows))
        return Evaluation(Decision.IMPLICIT_DENY)
    allows = direct + identity_allows + (via_account if identity_allows else [])
    if allows:
        return Evaluation(Decision.ALLOW, tuple(allows))
    return Evaluation(Decision.IMPLICIT_DENY)


def managed_policy(arn: str) -> Mapping[str, Any]:
    """The vendored default version of an AWS managed policy (as `aws iam get-policy-version`
    returns it, plus where it was read); an ARN without a vendored copy raises KeyError."""
    name = arn.rsplit("/", 1)[-1]
    path = MANAGED_POLICIES / f"{name}.json"
    if not arn.startswith("arn:aws:iam::aws:policy/") or not path.exists():
        raise KeyError(f"no vendored copy of the managed policy {arn} in {MANAGED_POLICIES}")
    vendored: Mapping[str, Any] = json.loads(path.read_text())
    if vendored["Arn"] != arn:
        raise KeyError(f"{path} holds {vendored['Arn']}, not {arn}")
    return vendored


def role_policies(resources: Sequence[Mapping[str, Any]], role_name: str) -> list[Policy]:
    """Every policy document of a role in a plan (`plan.json`'s resources): its inline
    policies and its attached AWS managed policies, from their vendored copies (an
    attachment without one raises KeyError, so no policy is ever left out)."""
    documents: list[Policy] = []
    for resource in resources:
        inputs = resource["inputs"]
        if inputs.get("role") != role_name:
            continue
        if resource["type"] == "aws:iam/rolePolicy:RolePolicy":
            documents.append(inputs["policy"])
        elif resource["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            documents.append(managed_policy(inputs["policyArn"])["PolicyVersion"]["Document"])
        elif resource["type"].startswith("aws:iam/role"):
            raise UnsupportedPolicyError(f"{resource['type']} {resource['name']} on the role")
    return documents

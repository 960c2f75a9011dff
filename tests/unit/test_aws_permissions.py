"""What each AWS principal of a stack may do, evaluated from the plan (`tools.iam`).

The edge's instance role: its effective permissions are every policy the plan attaches to
it (AWS managed ones expanded from their vendored copy), and for decryption the key
policy of the parameters' key. The table says what it must and must not do; the hostile
cases show the table fails on the role the edge had before (AmazonSSMManagedInstanceCore
and `kms:Decrypt` on `*`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from components.edge.gateway import SECRET_PARAMETERS, parameter_arn, parameter_names
from tests.support import STACKS, committed_stack_run, run_stack, stack_config, stack_values
from tools.iam import Decision, Request, evaluate, managed_policy, role_policies
from tools.mock_engine import ACCOUNT, ProgramRun, autoname

StackRun = Callable[[str], ProgramRun]
CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
OTHER_ACCOUNT = "444455556666"


def _plan(run: ProgramRun) -> list[dict[str, Any]]:
    return [r.to_json() for r in run.resources]


def _edge_role(run: ProgramRun) -> tuple[str, str]:
    """(name, ARN) of the edge's instance role, as AWS names it."""
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-edge-role")]
    name = autoname(role.name)
    return name, f"arn:aws:iam::{ACCOUNT}:role/{name}"


def _key_policy(run: ProgramRun) -> str:
    (key,) = run.of_type("aws:kms/key:Key")
    policy: str = key.inputs["policy"]
    return policy


def _own(stack: str) -> list[str]:
    """The edge's four parameters (its keys, the upstream keys, the tunnel key, the clients)."""
    config = stack_config(stack)
    return [
        parameter_arn(region=config.aws.region, account_id=ACCOUNT, name=n)
        for n in sorted(parameter_names(config).values())
    ]


def _own_secrets(stack: str) -> list[str]:
    """The three of them that hold secrets: SecureStrings under the edge's key."""
    config = stack_config(stack)
    return [
        parameter_arn(region=config.aws.region, account_id=ACCOUNT, name=n)
        for purpose, n in sorted(parameter_names(config).items())
        if purpose in SECRET_PARAMETERS
    ]


def _others(stack: str) -> list[str]:
    """Parameters the edge must not read: its neighbours, the other stack's, another
    application's, the same name in another region and in another account."""
    region = stack_config(stack).aws.region
    other_stack = "dev" if stack == "prod" else "prod"
    arn = f"arn:aws:ssm:{region}:{ACCOUNT}:parameter"
    return [
        f"{arn}/llm-platform/{stack}/edge/api-keys-old",
        f"{arn}/llm-platform/{stack}/edge",
        f"{arn}/llm-platform/{other_stack}/edge/api-keys",
        f"{arn}/other-app/database-password",
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/llm-platform/{stack}/edge/api-keys",
        f"arn:aws:ssm:{region}:{OTHER_ACCOUNT}:parameter/llm-platform/{stack}/edge/api-keys",
    ]


def _reads(
    policies: Sequence[Any], principal: str, stack: str
) -> Mapping[tuple[str, str], Decision]:
    """The decision for each (action, parameter) of the table."""
    table = {}
    for action in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory"):
        for arn in _own(stack) + _others(stack):
            table[(action, arn)] = evaluate(Request(action, arn, principal), policies).decision
    return table


@pytest.mark.parametrize("stack", STACKS)
def test_the_edge_role_reads_its_four_parameters_and_no_other(
    stack_run: StackRun, stack: str
) -> None:
    run = stack_run(stack)
    name, arn = _edge_role(run)
    policies = role_policies(_plan(run), name)
    table = _reads(policies, arn, stack)
    allowed = sorted(k for k, v in table.items() if v is Decision.ALLOW)
    assert allowed == [("ssm:GetParameter", own) for own in _own(stack)]
    # Everything else is denied; other parameters explicitly, whatever else is attached.
    for arn_other in _others(stack):
        assert table[("ssm:GetParameter", arn_other)] is Decision.EXPLICIT_DENY, arn_other
    by_path = Request(
        "ssm:GetParametersByPath",
        f"arn:aws:ssm:{stack_config(stack).aws.region}:{ACCOUNT}:parameter/llm-platform",
        arn,
    )
    assert evaluate(by_path, policies).decision is Decision.EXPLICIT_DENY


@pytest.mark.parametrize("stack", STACKS)
def test_the_deny_holds_even_with_the_managed_policy_attached(
    stack_run: StackRun, stack: str
) -> None:
    run = stack_run(stack)
    name, arn = _edge_role(run)
    core = managed_policy(CORE)["PolicyVersion"]["Document"]
    table = _reads([*role_policies(_plan(run), name), core], arn, stack)
    assert all(table[("ssm:GetParameter", a)] is Decision.EXPLICIT_DENY for a in _others(stack))
    # ...while the managed policy alone reads every parameter: what the table catches
    alone = _reads([core], arn, stack)
    assert all(alone[("ssm:GetParameter", a)] is Decision.ALLOW for a in _others(stack)[:5])


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_edge_role_decrypts_and_only_its_parameters_through_ssm(
    stack_run: StackRun, stack: str
) -> None:
    run = stack_run(stack)
    name, role_arn = _edge_role(run)
    role = role_policies(_plan(run), name)
    key_policy = _key_policy(run)
    region = stack_config(stack).aws.region
    (key,) = run.of_type("aws:kms/key:Key")
    key_arn = f"arn:aws:kms:{region}:{ACCOUNT}:key/{key.name}-id"
    via_ssm = f"ssm.{region}.amazonaws.com"

    def decrypt(principal: str, identity: Sequence[Any], **context: str) -> Decision:
        request = Request("kms:Decrypt", key_arn, principal, context)
        return evaluate(request, identity, key_policy, key_policy=True).decision

    context = "kms:EncryptionContext:PARAMETER_ARN"
    assert len(_own_secrets(stack)) == 3
    for own in _own_secrets(stack):
        assert decrypt(role_arn, role, **{"kms:ViaService": via_ssm, context: own}) is (
            Decision.ALLOW
        )
    # The client config is plain text: the key decrypts nothing under its name either.
    plain = sorted(set(_own(stack)) - set(_own_secrets(stack)))
    for other in [*_others(stack), *plain]:
        assert decrypt(role_arn, role, **{"kms:ViaService": via_ssm, context: other}) is (
            Decision.IMPLICIT_DENY
        )
    # not through SSM: the raw ciphertext is useless to the instance
    assert decrypt(role_arn, role, **{context: _own(stack)[0]}) is Decision.IMPLICIT_DENY
    # any other principal of the account, however broad its own policy
    admin = f"arn:aws:iam::{ACCOUNT}:role/administrator"
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    ctx = {"kms:ViaService": via_ssm, context: _own(stack)[0]}
    assert decrypt(admin, [everything], **ctx) is Decision.IMPLICIT_DENY
    # ...which may still manage the key (its policy, rotation, deletion)
    manage = Request("kms:PutKeyPolicy", key_arn, admin)
    assert evaluate(manage, [everything], key_policy, key_policy=True).decision is Decision.ALLOW
    # the deploying identity writes (and reads back) the same three secret parameters only
    deployer = f"arn:aws:iam::{ACCOUNT}:user/render"
    for action in ("kms:Encrypt", "kms:Decrypt"):
        ok = Request(action, key_arn, deployer, ctx)
        assert evaluate(ok, [], key_policy, key_policy=True).decision is Decision.ALLOW
        other = Request(action, key_arn, deployer, {**ctx, context: _others(stack)[3]})
        assert evaluate(other, [], key_policy, key_policy=True).decision is (Decision.IMPLICIT_DENY)


def test_the_role_the_edge_had_before_fails_the_table() -> None:
    """AmazonSSMManagedInstanceCore plus `kms:Decrypt` on `*` through SSM (issue 23)."""
    stack = "prod"
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/edge"
    before = [
        managed_policy(CORE)["PolicyVersion"]["Document"],
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ssm:GetParameter", "ssm:GetParameters"],
                        "Resource": _own(stack),
                    }
                ],
            }
        ),
    ]
    table = _reads(before, role_arn, stack)
    leaks = [a for a in _others(stack) if table[("ssm:GetParameter", a)] is Decision.ALLOW]
    assert leaks == _others(stack)[:5], "every parameter of the account"


def test_a_configured_deployer_is_the_one_the_key_lets_write() -> None:
    values = stack_values("dev")
    deployer = f"arn:aws:iam::{ACCOUNT}:role/llm-platform-deploy"
    values["aws"]["deployer_arn"] = deployer
    statements = json.loads(_key_policy(run_stack(values)))["Statement"]
    (writer,) = [s for s in statements if s["Sid"] == "DeployerWritesTheParameters"]
    assert writer["Principal"] == {"AWS": deployer}
    # by default: whoever runs the program (the render runs as an IAM user)
    (default,) = [
        s
        for s in json.loads(_key_policy(committed_stack_run("dev")))["Statement"]
        if s["Sid"] == "DeployerWritesTheParameters"
    ]
    assert default["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:user/render"}

"""The edge gateway under the recording mocks: network, security group, IMDSv2, IAM, SSM."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from components.edge.gateway import client_config, parameter_names
from components.edge.wireguard_keys import private_key_from_random_bytes
from tests.support import run_stack, stack_config, stack_values
from tools.mock_engine import ProgramRun, RecordedResource, autoname

StackRun = Callable[[str], ProgramRun]


def _only(run: ProgramRun, type_token: str) -> RecordedResource:
    (resource,) = run.of_type(type_token)
    return resource


def _user_data(run: ProgramRun) -> str:
    instance = _only(run, "aws:ec2/instance:Instance")
    return gzip.decompress(base64.b64decode(instance.inputs["userDataBase64"])).decode()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_security_group_opens_web_ports_to_clients_and_wireguard_to_home_only(
    stack_run: StackRun, stack: str
) -> None:
    config = stack_config(stack)
    edge = config.edge
    assert edge is not None
    group = _only(stack_run(stack), "aws:ec2/securityGroup:SecurityGroup")
    rules = {
        (r["protocol"], r["fromPort"], r["toPort"]): sorted(r["cidrBlocks"])
        for r in group.inputs["ingress"]
    }
    clients = sorted(str(c) for c in edge.client_cidrs)
    assert rules == {
        ("tcp", 443, 443): clients,
        ("tcp", 80, 80): clients,
        ("udp", edge.wireguard.listen_port, edge.wireguard.listen_port): [
            str(edge.wireguard.home_public_cidr)
        ],
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_instance_requires_imdsv2_and_encrypts_its_root_volume(
    stack_run: StackRun, stack: str
) -> None:
    run = stack_run(stack)
    instance = _only(run, "aws:ec2/instance:Instance")
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    assert instance.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    root = instance.inputs["rootBlockDevice"]
    assert root["encrypted"] is True and root["volumeType"] == "gp3"
    assert "ami" in instance.ignore_changes
    assert instance.inputs["instanceType"] == stack_config(stack).edge.instance_type  # type: ignore[union-attr]
    assert "keyName" not in instance.inputs, "no SSH key: Session Manager only"
    (aws_provider,) = run.of_type("pulumi:providers:aws")
    aws_resources = [r for r in run.resources if r.type.startswith("aws:") and r.custom]
    assert {r.provider for r in aws_resources} == {aws_provider.urn}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_parameters_are_secure_strings_under_the_edge_key_and_the_role_has_one_policy(
    stack_run: StackRun, stack: str
) -> None:
    run = stack_run(stack)
    names = parameter_names(stack_config(stack))
    every = run.of_type("aws:ssm/parameter:Parameter")
    assert sorted(p.inputs["name"] for p in every) == sorted(names.values())
    parameters = [p for p in every if p.inputs["name"] != names["client_config"]]
    assert all(p.inputs["type"] == "SecureString" for p in parameters)
    assert all(p.inputs["value"] == "[secret]" for p in parameters)
    key = _only(run, "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    key_arn = f"arn:aws:kms:{stack_config(stack).aws.region}:000000000000:key/{key.name}-id"
    assert {p.inputs["keyId"] for p in parameters} == {key_arn}
    # Who may in and each client's limits: plain, so a change shows in previews and diffs.
    (clients,) = [p for p in every if p.inputs["name"] == names["client_config"]]
    assert clients.inputs["type"] == "String" and "keyId" not in clients.inputs
    files = json.loads(clients.inputs["insecureValue"])
    assert files == json.loads(client_config(stack_config(stack)).parameter_value())
    assert all(f'"{name}" "{name}";' in files["http"] for name in stack_config(stack).clients)
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-edge-role")]
    on_role = sorted(r.type for r in run.resources if r.inputs.get("role") == autoname(role.name))
    assert on_role == [
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:iam/rolePolicy:RolePolicy",
    ], "one inline policy, no managed policy"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_reaches_the_user_data(stack_run: StackRun, stack: str) -> None:
    run = stack_run(stack)
    user_data = _user_data(run)
    # The render's random values are fixed: keys are 'x' * 40 and the WireGuard key is
    # derived from bytes 0..31; neither may appear.
    assert "x" * 40 not in user_data
    wg_private = private_key_from_random_bytes(base64.b64encode(bytes(range(32))).decode())
    assert wg_private not in user_data
    assert "[secret]" not in user_data
    for name in parameter_names(stack_config(stack)).values():
        assert name in user_data, "the instance pulls its secrets from SSM by name"
    assert run.artifacts["edge/cloud-init.yaml"] == user_data
    assert "PrivateKey = (redacted" in run.artifacts["edge/wg0-home.conf"]


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init is not installed")
def test_rendered_user_data_passes_cloud_init_schema(stack_run: StackRun, tmp_path: Path) -> None:
    target = tmp_path / "user-data.yaml"
    target.write_text(_user_data(stack_run("prod")))
    result = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_outputs_and_dns(stack_run: StackRun) -> None:
    outputs = stack_run("prod").outputs
    assert outputs["api_base_url"] == "https://llm.example.org/v1"
    assert outputs["edge_public_ip"] == "192.0.2.10"
    assert outputs["edge_home_wireguard_conf"] == "[secret]"
    assert len(base64.b64decode(outputs["edge_wireguard_public_key"])) == 32
    dev = stack_run("dev").outputs
    assert dev["api_base_url"] == "https://192.0.2.10/v1", "no domain: the Elastic IP"


def test_existing_vpc_and_subnet_are_used_as_given() -> None:
    values = stack_values("dev")
    values["edge"]["network"] = {
        "existing_vpc_id": "vpc-0123456789abcdef0",
        "existing_subnet_id": "subnet-0123456789abcdef0",
    }
    run = run_stack(values, "dev")
    assert run.of_type("aws:ec2/vpc:Vpc") == []
    # The instance sits on its own network interface (which carries the Elastic IP).
    assert _only(run, "aws:ec2/networkInterface:NetworkInterface").inputs["subnetId"] == (
        "subnet-0123456789abcdef0"
    )


def test_prod_refuses_wireguard_open_to_the_world() -> None:
    from components.config import ConfigError, parse_platform_config

    values = stack_values("prod")
    values["edge"]["wireguard"]["home_public_cidr"] = "0.0.0.0/0"
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    assert any("edge.wireguard.home_public_cidr" in line for line in raised.value.lines)


def test_bootstrap_mode_sets_up_the_home_end_over_ssh_without_leaking_its_key() -> None:
    import pulumi
    import pulumi_aws as aws
    import pulumi_command as command

    from components.config import parse_platform_config
    from components.edge.gateway import EdgeGateway, EdgeGatewayArgs
    from tools.mock_engine import run_program

    values = stack_values("prod")
    values["cluster"]["mode"] = "bootstrap"
    values["cluster"]["api_endpoint"] = "192.168.10.11"
    config = parse_platform_config(values)

    def program() -> dict[str, object]:
        provider = aws.Provider("aws", region="eu-west-1")
        keys = {name: pulumi.Output.secret(f"sk-edge-{name}-TEST") for name in config.clients}
        EdgeGateway(
            "edge",
            EdgeGatewayArgs(
                config=config,
                provider=provider,
                edge_keys=keys,
                upstream_keys=keys,
                upstream_ca_pem="-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
                home_connection=command.remote.ConnectionArgs(
                    host="192.168.10.11",
                    user="ubuntu",
                    private_key=pulumi.Output.secret("TEST-SSH-KEY"),
                ),
            ),
        )
        return {}

    run = run_program(stack="prod", config={}, secret_keys=[], program=program)
    (home,) = run.of_type("command:remote:Command")
    # pulumi-command makes the whole connection (host, user, key) a secret.
    assert home.inputs["connection"] == "[secret]"
    assert home.inputs["stdin"] == "[secret]", "the config and its key travel on stdin"
    assert "PrivateKey" not in home.inputs["create"]
    assert "wg-quick@wg0" in home.inputs["create"] and "wg-quick@wg0" in home.inputs["delete"]

"""The edge gateway component alone under the recording mocks: what it hands AWS.

The program here builds only an `EdgeGateway` (no platform around it) with distinctive
secret placeholders, so a leak shows as that exact text anywhere in the recorded inputs,
outputs or artifacts. Complements `test_edge_gateway.py`, which runs the whole stack.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pytest

from components.config import ConfigError, PlatformConfig, parse_platform_config
from components.edge.gateway import (
    EdgeGateway,
    EdgeGatewayArgs,
    api_key_set,
    security_group_egress,
    security_group_ingress,
)
from components.edge.wireguard_keys import private_key_from_random_bytes, wireguard_public_key
from tests.support import as_existing, secret_placeholder, stack_config, stack_values
from tools.mock_engine import ProgramRun, RecordedResource, run_program

CA_PEM = "-----BEGIN CERTIFICATE-----\nTEST-CA\n-----END CERTIFICATE-----\n"
SSH_KEY = secret_placeholder("ssh_private_key")
# The mocks answer every RandomBytes with bytes 0..31: the private key both ends derive.
RENDERED_WG_PRIVATE = private_key_from_random_bytes(base64.b64encode(bytes(range(32))).decode())


def _edge_key(client: str) -> str:
    return secret_placeholder(f"edge-{client}")


def _upstream_key(client: str) -> str:
    return secret_placeholder(f"upstream-{client}")


def _run(config: PlatformConfig) -> ProgramRun:
    def program() -> dict[str, Any]:
        provider = aws.Provider(
            "aws",
            region=config.aws.region,
            skip_credentials_validation=True,
            skip_requesting_account_id=True,
            skip_metadata_api_check=True,
        )
        gateway = EdgeGateway(
            "edge",
            EdgeGatewayArgs(
                config=config,
                provider=provider,
                edge_keys={c: pulumi.Output.secret(_edge_key(c)) for c in config.clients},
                upstream_keys={c: pulumi.Output.secret(_upstream_key(c)) for c in config.clients},
                upstream_ca_pem=CA_PEM,
                home_connection=command.remote.ConnectionArgs(
                    host="192.168.10.11", user="ubuntu", private_key=pulumi.Output.secret(SSH_KEY)
                ),
            ),
        )
        pulumi.export("public_ip", gateway.public_ip)
        pulumi.export("endpoint_url", gateway.endpoint_url)
        pulumi.export("wireguard_public_key", gateway.wireguard_public_key)
        pulumi.export("ssm_parameters", gateway.ssm_parameters)
        pulumi.export("home_wireguard_conf", gateway.home_wireguard_conf)
        # `run_program` resolves the artifacts of the object kept as "platform".
        return {"platform": gateway}

    return run_program(stack=config.environment, config={}, secret_keys=[], program=program)


def _bootstrap(stack: str) -> PlatformConfig:
    """The stack with the cluster bootstrapped by the program (validated like any config)."""
    values = stack_values(stack)
    values["cluster"]["mode"] = "bootstrap"
    values["cluster"]["api_endpoint"] = "192.168.10.11"
    return parse_platform_config(values)


@cache
def _run_stack(stack: str, mode: str) -> ProgramRun:
    return _run(_bootstrap(stack) if mode == "bootstrap" else _existing(stack))


def _existing(stack: str) -> PlatformConfig:
    """The stack adopting an existing cluster (whatever mode its file uses)."""
    return parse_platform_config(as_existing(stack_values(stack)))


def _only(run: ProgramRun, type_token: str) -> RecordedResource:
    (resource,) = run.of_type(type_token)
    return resource


def _secrets(config: PlatformConfig) -> list[str]:
    keys = [f(c) for c in config.clients for f in (_edge_key, _upstream_key)]
    return [*keys, SSH_KEY, RENDERED_WG_PRIVATE]


@pytest.mark.parametrize(("stack", "mode"), [("dev", "existing"), ("prod", "bootstrap")])
def test_no_secret_reaches_any_clear_input_output_or_artifact(stack: str, mode: str) -> None:
    run = _run_stack(stack, mode)
    recorded = json.dumps(
        {
            "inputs": [r.inputs for r in run.resources],
            "outputs": run.outputs,
            "artifacts": run.artifacts,
        }
    )
    leaked = [s for s in _secrets(stack_config(stack)) if s in recorded]
    assert leaked == []
    # The values really were handed over, as secrets.
    for parameter in run.of_type("aws:ssm/parameter:Parameter"):
        if parameter.inputs["type"] == "SecureString":
            assert parameter.inputs["value"] == "[secret]"
    assert run.outputs["home_wireguard_conf"] == "[secret]"
    assert set(run.artifacts) == {
        "edge/nginx.conf",
        "edge/clients-http.conf",
        "edge/clients-limits.conf",
        "edge/cloud-init.yaml",
        "edge/wg0-edge.conf",
        "edge/wg0-home.conf",
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_child_has_the_component_as_parent_and_aws_ones_the_explicit_provider(
    stack: str,
) -> None:
    run = _run_stack(stack, "existing")
    component = _only(run, "llm-platform:edge:EdgeGateway")
    provider = _only(run, "pulumi:providers:aws")
    children = [
        r
        for r in run.resources
        if r.urn not in (component.urn, provider.urn) and r.type != "pulumi:pulumi:Stack"
    ]
    assert children, "the component registered nothing"
    assert [r.name for r in children if r.parent != component.urn] == []
    aws_children = [r for r in children if r.type.startswith("aws:")]
    assert {r.provider for r in aws_children} == {provider.urn}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_egress_is_web_out_and_the_tunnel_to_home_only(stack: str) -> None:
    config = stack_config(stack)
    edge = config.edge
    assert edge is not None
    group = _only(_run_stack(stack, "existing"), "aws:ec2/securityGroup:SecurityGroup")
    rules = {
        (r["protocol"], r["fromPort"], r["toPort"]): sorted(r["cidrBlocks"])
        for r in group.inputs["egress"]
    }
    assert rules == {
        ("tcp", 443, 443): ["0.0.0.0/0"],
        ("tcp", 80, 80): ["0.0.0.0/0"],
        ("udp", 0, 65535): [str(edge.wireguard.home_public_cidr)],
    }
    assert all(r["protocol"] != "-1" for r in group.inputs["egress"])


def test_prod_guard_refuses_a_world_open_tunnel_port_even_past_the_config() -> None:
    prod = stack_config("prod")
    assert prod.edge is not None
    # `model_copy` skips validation: this is the config check being bypassed on purpose.
    world = prod.edge.wireguard.model_copy(update={"home_public_cidr": IPv4Network("0.0.0.0/0")})
    bad = prod.model_copy(update={"edge": prod.edge.model_copy(update={"wireguard": world})})
    with pytest.raises(ValueError, match="prod opens no port but 80/443"):
        security_group_ingress(bad)
    dev = stack_config("dev")
    assert dev.edge is not None
    open_dev = dev.model_copy(
        update={
            "edge": dev.edge.model_copy(
                update={
                    "wireguard": dev.edge.wireguard.model_copy(
                        update={"home_public_cidr": IPv4Network("0.0.0.0/0")}
                    )
                }
            )
        }
    )
    udp = [r for r in security_group_ingress(open_dev) if r["protocol"] == "udp"]
    assert udp[0]["cidr_blocks"] == ["0.0.0.0/0"], "dev may open it (config decides)"
    assert len(security_group_egress(open_dev)) == 3


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_instance_boots_with_its_address_route_role_and_parameters_in_place(
    stack: str,
) -> None:
    run = _run_stack(stack, "existing")
    instance = _only(run, "aws:ec2/instance:Instance")
    interface = _only(run, "aws:ec2/networkInterface:NetworkInterface")
    address = _only(run, "aws:ec2/eip:Eip")
    group = _only(run, "aws:ec2/securityGroup:SecurityGroup")
    assert (
        instance.inputs["primaryNetworkInterface"]["networkInterfaceId"] == f"{interface.name}-id"
    )
    assert address.inputs["networkInterface"] == f"{interface.name}-id"
    assert interface.inputs["securityGroups"] == [f"{group.name}-id"]
    assert "vpcSecurityGroupIds" not in instance.inputs and "subnetId" not in instance.inputs
    needed = [
        address,
        _only(run, "aws:iam/rolePolicy:RolePolicy"),
        _only(run, "aws:ec2/routeTableAssociation:RouteTableAssociation"),
        _only(run, "aws:ec2/internetGateway:InternetGateway"),
        *run.of_type("aws:ssm/parameter:Parameter"),
    ]
    assert sorted(r.name for r in needed if r.urn not in instance.depends_on) == []
    assert instance.delete_before_replace, "the interface is attached to one instance at a time"
    assert instance.inputs["userDataReplaceOnChange"] is True
    assert instance.inputs["metadataOptions"]["httpEndpoint"] == "enabled"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_taggable_resources_carry_a_name_tag(stack: str) -> None:
    run = _run_stack(stack, "existing")
    untaggable = {
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:kms/alias:Alias",
        "aws:route53/record:Record",
    }
    aws_resources = [r for r in run.resources if r.custom and r.type.startswith("aws:")]
    missing = [
        r.name
        for r in aws_resources
        if r.type not in untaggable and "Name" not in (r.inputs.get("tags") or {})
    ]
    assert missing == []
    root = _only(run, "aws:ec2/instance:Instance").inputs["rootBlockDevice"]
    assert root["tags"]["Name"].endswith("-edge-root")


def test_outputs_name_the_address_the_derived_public_key_and_the_parameters() -> None:
    run = _run_stack("prod", "existing")
    config = stack_config("prod")
    assert config.edge is not None
    assert run.outputs["public_ip"] == "192.0.2.10"
    assert run.outputs["endpoint_url"] == f"https://{config.edge.domain}/v1"
    assert run.outputs["wireguard_public_key"] == wireguard_public_key(RENDERED_WG_PRIVATE)
    parameters = run.outputs["ssm_parameters"]
    assert sorted(parameters.values()) == sorted(
        p.inputs["name"] for p in run.of_type("aws:ssm/parameter:Parameter")
    )
    home = run.artifacts["edge/wg0-home.conf"]
    assert f"PublicKey = {run.outputs['wireguard_public_key']}" in home
    assert "Endpoint = 192.0.2.10:" in home


def test_home_end_over_ssh_only_when_the_program_bootstraps_the_cluster() -> None:
    assert _run_stack("prod", "existing").of_type("command:remote:Command") == []
    run = _run_stack("prod", "bootstrap")
    home = _only(run, "command:remote:Command")
    assert home.parent == _only(run, "llm-platform:edge:EdgeGateway").urn
    assert home.inputs["stdin"] == "[secret]", "wg0.conf with its key arrives on stdin"
    assert home.inputs["connection"] == "[secret]", "host, user and SSH key"
    for script in (home.inputs["create"], home.inputs["delete"]):
        assert "PrivateKey" not in script and "wg-quick@wg0" in script
    assert "systemctl enable" in home.inputs["create"]
    assert "rm -f /etc/wireguard/wg0.conf" in home.inputs["delete"]


def test_a_key_given_as_secret_config_replaces_the_generated_one() -> None:
    text = api_key_set(
        generated={"alice": "sk-edge-generated-a", "bob": "sk-edge-generated-b"},
        given={"bob": "sk-given-by-the-operator"},
    )
    assert json.loads(text) == {"alice": "sk-edge-generated-a", "bob": "sk-given-by-the-operator"}


def test_given_keys_must_match_the_configured_client_key_secrets() -> None:
    values = stack_values("dev")
    client = sorted(values["clients"])[0]
    values["edge"]["client_key_secrets"] = {client: "edge_key_given"}
    config = parse_platform_config(values)
    given = secret_placeholder("edge_key_given")

    def gateway(keys: dict[str, str]) -> ProgramRun:
        def program() -> dict[str, Any]:
            provider = aws.Provider("aws", region=config.aws.region)
            gateway = EdgeGateway(
                "edge",
                EdgeGatewayArgs(
                    config=config,
                    provider=provider,
                    edge_keys={c: pulumi.Output.secret(_edge_key(c)) for c in config.clients},
                    upstream_keys={
                        c: pulumi.Output.secret(_upstream_key(c)) for c in config.clients
                    },
                    upstream_ca_pem=CA_PEM,
                    given_keys={c: pulumi.Output.secret(k) for c, k in keys.items()},
                ),
            )
            return {"platform": gateway}

        return run_program(stack="dev", config={}, secret_keys=[], program=program)

    run = gateway({client: given})
    recorded = json.dumps([r.inputs for r in run.resources]) + json.dumps(run.artifacts)
    assert given not in recorded
    (api_keys,) = [
        p for p in run.of_type("aws:ssm/parameter:Parameter") if p.name.endswith("api-keys")
    ]
    assert api_keys.inputs["value"] == "[secret]"
    with pytest.raises(ValueError, match="client_key_secrets"):
        gateway({})


def test_an_ingress_on_another_host_is_reached_through_the_tunnel_node() -> None:
    values = stack_values("prod")
    tunnel_node = values["cluster"]["nodes"][values["cluster"]["wireguard_node"]]["address"]
    other = str(IPv4Network(f"{tunnel_node}/32").network_address + 1)
    values["cluster"]["ingress_node_address"] = other
    # A config error before anything is registered, naming the field to set.
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    assert any(
        line.startswith("config error: edge.wireguard.home_lan_interface:")
        for line in raised.value.lines
    )
    values["edge"]["wireguard"]["home_lan_interface"] = "enp3s0"
    run = _run(parse_platform_config(values))
    home = run.artifacts["edge/wg0-home.conf"]
    assert "-o enp3s0 -j MASQUERADE" in home and "net.ipv4.ip_forward=1" in home
    assert f"server {other}:443" in run.artifacts["edge/nginx.conf"]
    # Without it (the ingress on the tunnel node itself), nothing is forwarded.
    assert "MASQUERADE" not in _run_stack("prod", "existing").artifacts["edge/wg0-home.conf"]


def test_a_stack_with_nothing_on_aws_has_no_aws_provider_and_asks_aws_nothing() -> None:
    from tests.support import run_stack

    values = stack_values("dev")
    values["edge"]["enabled"] = False
    run = run_stack(values, "dev")
    assert [
        r.type for r in run.resources if r.type.startswith(("aws:", "pulumi:providers:aws"))
    ] == []
    # No look-up either: each would need AWS credentials.
    assert [token for token in run.invoked if token.startswith("aws:")] == []
    assert run.outputs["edge_public_ip"] is None
    # With the edge, the provider and its look-ups are there.
    with_edge = run_stack(stack_values("dev"), "dev")
    assert len(with_edge.of_type("pulumi:providers:aws")) == 1
    assert "aws:index/getCallerIdentity:getCallerIdentity" in with_edge.invoked

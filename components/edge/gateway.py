"""EdgeGateway: the platform's public front door on AWS EC2, tunnelled home over WireGuard.

In order: the network (its own VPC, public subnet, internet gateway and route, the VPC's
default security group emptied and its flow logs sent to the log bucket; or the existing
VPC and subnet from config, left as they are); a security group open on 443 (and 80 for
the ACME challenge and the redirect) to the client CIDRs and on the WireGuard port to the
home address only; the WireGuard keys (32 random bytes each, public keys derived with
X25519); the instance role; a customer-managed KMS key for the edge's parameters, whose key
policy lets only that role decrypt (through SSM, for exactly those parameters) and the
deploying identity encrypt and read them back; the secrets in SSM SecureString parameters
under that key (the client key set, the keys sent upstream, the edge's tunnel key) and
the client config (who may in, each client's limits) as a plain String parameter; the
role's one policy: the Session Manager channel, read access to exactly those parameters,
and an explicit deny of every other parameter (no SSH, no AWS managed policy); the
instance (Ubuntu 24.04 found by a look-up, IMDSv2 with hop limit 1, encrypted gp3 root),
whose user-data carries the generated nginx config and scripts but no secret and no
client: it pulls the keys and the client files from SSM at boot and on a timer, so a
client change reloads nginx and never replaces the instance; its network interface carries the Elastic IP
before it boots (so cloud-init always has a way out); egress is HTTPS, HTTP and the
tunnel only; an optional Route53 record; and the home end of the tunnel, set up over SSH
when the program bootstraps the cluster, rendered as a file (private key redacted)
otherwise.

Expects the explicit `aws.Provider` in the args (every AWS resource and the look-ups use
it); pulumi-random and pulumi-command need none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Interface

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_random as random

from components.cloud import policies
from components.config import PlatformConfig
from components.edge.api_surface import routes
from components.edge.cloud_init import (
    CloudInitSettings,
    compress_user_data,
    render_cloud_init,
    render_wireguard_edge_conf,
    render_wireguard_home_conf,
)
from components.edge.nginx_conf import (
    ClientConfigFiles,
    ClientLimit,
    NginxSettings,
    render_client_config,
    render_nginx_conf,
)
from components.edge.wireguard_keys import private_key_from_random_bytes, wireguard_public_key
from components.s3_bucket import LogTarget

SECRET_PARAMETERS = frozenset({"api_keys", "upstream_keys", "wireguard_key"})
"""The edge's parameters that hold secrets: SecureStrings under its own KMS key. The other,
`client_config`, is a plain String that shows in previews and diffs."""

SESSION_CHANNEL_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
"""With `ssm:UpdateInstanceInformation`, what the SSM agent needs for Session Manager and
nothing more (AWS Systems Manager User Guide, "Step 2: Verify or add instance permissions
for Session Manager"); `ssmmessages` has no resource-level permissions."""
PARAMETER_READS = ("ssm:GetParameter*", "ssm:GetParametersByPath")
"""Every action that returns a parameter's value (`GetParameter`, `GetParameters`,
`GetParameterHistory`, `GetParametersByPath`)."""
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
"""What the account's IAM policies may be granted on the key: managing it, never using it
(no Decrypt, Encrypt, GenerateDataKey or CreateGrant)."""
UBUNTU_OWNER = "099720109477"
"""Canonical's AWS account, the publisher of the official Ubuntu AMIs."""
UPSTREAM_KEYS_MAP = "/etc/nginx/edge/upstream-keys.map"
REDACTED = "(redacted: held in Pulumi state as a secret)"
WEB_PORTS = (443, 80)


@dataclass(frozen=True, kw_only=True)
class EdgeGatewayArgs:
    """Inputs of the edge gateway."""

    config: PlatformConfig
    provider: aws.Provider
    edge_keys: Mapping[str, pulumi.Output[str]]
    """Each client's key at the edge (`ClientKeys.edge_keys`)."""
    upstream_keys: Mapping[str, pulumi.Output[str]]
    """Each client's LiteLLM key, sent upstream in place of its edge key."""
    upstream_ca_pem: pulumi.Input[str]
    """The internal root CA: nginx verifies the cluster ingress with it."""
    home_connection: command.remote.ConnectionArgs | None = None
    """`bootstrap` mode: SSH to the home tunnel node as the cluster reaches it
    (`K3sCluster.connection`, its host key pinned when configured)."""
    home_node_ready: Sequence[pulumi.Resource] = ()
    """`bootstrap` mode: the tunnel node's k3s install; the tunnel is set up after it."""
    given_keys: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Edge keys given as secret config (`edge.client_key_secrets`), by client name; each
    replaces that client's generated edge key. None by default: every key is generated."""
    log_target: LogTarget | None = None
    """The stack's log bucket: the flow logs of the edge's own VPC go there. None by
    default: no flow logs."""


def nginx_settings(config: PlatformConfig) -> NginxSettings:
    """The edge's nginx settings from the stack config (pure)."""
    edge = config.edge
    assert edge is not None
    cluster = config.cluster
    ingress = cluster.ingress_node_address or cluster.nodes[cluster.wireguard_node or ""].address
    return NginxSettings(
        upstreams=(f"{ingress}:443",),
        upstream_sni=f"api.{config.ingress.domain}",
        routes=routes(edge.api_routes),
        server_name=edge.domain,
        anon_requests_per_second=edge.anonymous_requests_per_second,
        max_body_size_bytes=edge.max_body_mib * 1024 * 1024,
        read_timeout_seconds=edge.read_timeout_seconds,
        upstream_keys_map_path=UPSTREAM_KEYS_MAP,
        ocsp_stapling=edge.domain is not None,
        ocsp_trusted_chain_path="/etc/nginx/edge/tls/chain.pem" if edge.domain else None,
        resolver="169.254.169.253" if edge.domain is not None else None,
    )


def client_config(config: PlatformConfig) -> ClientConfigFiles:
    """The client files of the edge's nginx (who may in, each client's limits), which reach
    the instance through SSM: a client added, removed or re-limited reloads nginx and
    changes nothing of the instance (pure)."""
    edge = config.edge
    assert edge is not None
    return render_client_config(
        [
            ClientLimit(name=name, requests_per_second=c.requests_per_second, burst=c.burst)
            for name, c in sorted(config.clients.items())
        ],
        anon_requests_per_second=edge.anonymous_requests_per_second,
    )


def cloud_init_settings(
    config: PlatformConfig,
    *,
    parameters: Mapping[str, str],
    home_public_key: str,
    upstream_ca_pem: str,
) -> CloudInitSettings:
    """The user-data settings: names and public values only (pure)."""
    edge = config.edge
    assert edge is not None
    wireguard = edge.wireguard
    return CloudInitSettings(
        nginx=nginx_settings(config),
        region=config.aws.region,
        api_keys_parameter=parameters["api_keys"],
        client_config_parameter=parameters["client_config"],
        upstream_keys_parameter=parameters["upstream_keys"],
        wireguard_key_parameter=parameters["wireguard_key"],
        wireguard_address=IPv4Interface(
            f"{wireguard.edge_address}/{wireguard.tunnel_cidr.prefixlen}"
        ),
        home_public_key=home_public_key,
        home_address=wireguard.home_address,
        home_networks=(wireguard.home_lan_cidr,),
        wireguard_listen_port=wireguard.listen_port,
        upstream_ca_pem=upstream_ca_pem,
        domain=edge.domain,
        acme_email=edge.acme_email,
        key_refresh_minutes=edge.key_refresh_minutes,
    )


def parameter_names(config: PlatformConfig) -> dict[str, str]:
    """SSM parameter names of the stack's edge, by purpose."""
    prefix = f"/llm-platform/{config.stack_name}/edge"
    return {
        "api_keys": f"{prefix}/api-keys",
        "client_config": f"{prefix}/client-config",
        "upstream_keys": f"{prefix}/upstream-keys",
        "wireguard_key": f"{prefix}/wireguard-key",
    }


def api_key_set(*, generated: Mapping[str, str], given: Mapping[str, str]) -> str:
    """The API keys parameter: JSON of client name to key, a given key replacing the
    generated one of its client (pure)."""
    return json.dumps({**generated, **given}, sort_keys=True)


def parameter_arn(*, region: str, account_id: str, name: str) -> str:
    """The ARN of an SSM parameter (a name starting with `/` joins `parameter` directly)."""
    return (
        f"arn:aws:ssm:{region}:{account_id}:parameter{name if name.startswith('/') else '/' + name}"
    )


def instance_policy(parameter_arns: list[str], *, region: str, account_id: str) -> str:
    """The instance role's one policy: Session Manager, its own parameters, no other."""
    own = sorted(parameter_arns)
    return policies.document(
        [
            {
                "Sid": "RegisterWithSystemsManager",
                "Effect": "Allow",
                "Action": "ssm:UpdateInstanceInformation",
                "Resource": f"arn:aws:ec2:{region}:{account_id}:instance/*",
            },
            {
                "Sid": "SessionManagerChannels",
                "Effect": "Allow",
                "Action": list(SESSION_CHANNEL_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "ReadOwnParameters",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": own,
            },
            {
                # Holds even if a broader policy is attached to the role later.
                "Sid": "NoOtherParameters",
                "Effect": "Deny",
                "Action": list(PARAMETER_READS),
                "NotResource": own,
            },
        ]
    )


def parameters_key_policy(
    *,
    account_id: str,
    region: str,
    parameter_arns: list[str],
    reader_arn: str,
    writer_arn: str,
) -> str:
    """Key policy of the parameters' key: the account manages it; the instance role may
    decrypt, and the deploying identity encrypt and decrypt (the provider reads a written
    value back), each only through SSM and only for these parameters (SSM names the
    parameter in the encryption context, `PARAMETER_ARN`: AWS KMS Developer Guide, "How
    AWS Systems Manager Parameter Store uses AWS KMS")."""
    through_ssm = {
        "StringEquals": {
            "kms:ViaService": f"ssm.{region}.amazonaws.com",
            "kms:EncryptionContext:PARAMETER_ARN": sorted(parameter_arns),
        }
    }
    return policies.document(
        [
            {
                "Sid": "AccountManagesTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "EdgeReadsItsParameters",
                "Effect": "Allow",
                "Principal": {"AWS": reader_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": through_ssm,
            },
            {
                "Sid": "DeployerWritesTheParameters",
                "Effect": "Allow",
                "Principal": {"AWS": writer_arn},
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": through_ssm,
            },
        ]
    )


def security_group_ingress(config: PlatformConfig) -> list[dict[str, object]]:
    """Web ports to the client CIDRs, WireGuard to the home address; nothing else (pure)."""
    edge = config.edge
    assert edge is not None
    clients = sorted(str(c) for c in edge.client_cidrs)
    rules: list[dict[str, object]] = [
        {
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_blocks": clients,
            "description": "HTTPS API" if port == 443 else "ACME HTTP-01 and redirect",
        }
        for port in WEB_PORTS
    ]
    rules.append(
        {
            "protocol": "udp",
            "from_port": edge.wireguard.listen_port,
            "to_port": edge.wireguard.listen_port,
            "cidr_blocks": [str(edge.wireguard.home_public_cidr)],
            "description": "WireGuard from home",
        }
    )
    if config.is_prod:
        # The config rejects this first; kept so no code path can register such a rule.
        for rule in rules:
            world = [c for c in rule["cidr_blocks"] if str(c).endswith("/0")]  # type: ignore[attr-defined]
            web = (
                rule["protocol"] == "tcp"
                and rule["from_port"] == rule["to_port"]
                and rule["from_port"] in WEB_PORTS
            )
            if world and not web:
                raise ValueError(
                    f"EdgeGateway: prod opens no port but 80/443 to {world[0]} "
                    f"(rule {rule['description']!r})"
                )
    return rules


def security_group_egress(config: PlatformConfig) -> list[dict[str, object]]:
    """What the edge itself opens outwards: HTTPS, HTTP and the tunnel; nothing else (pure).

    HTTPS reaches SSM, the aws-cli snap and Let's Encrypt; HTTP the Ubuntu archive. DNS
    (the VPC resolver) and time (Amazon Time Sync) are link-local services that security
    groups do not filter. Replies to inbound traffic pass anyway (groups are stateful).
    """
    edge = config.edge
    assert edge is not None
    world = ["0.0.0.0/0"]
    return [
        {
            "protocol": "tcp",
            "from_port": 443,
            "to_port": 443,
            "cidr_blocks": world,
            "description": "SSM, packages, ACME",
        },
        {
            "protocol": "tcp",
            "from_port": 80,
            "to_port": 80,
            "cidr_blocks": world,
            "description": "Ubuntu archive",
        },
        {
            # To whatever port the home NAT gave the tunnel: the edge sends first when it
            # forwards a request after the group's UDP connection tracking has expired.
            "protocol": "udp",
            "from_port": 0,
            "to_port": 65535,
            "cidr_blocks": [str(edge.wireguard.home_public_cidr)],
            "description": "WireGuard to home",
        },
    ]


class EdgeGateway(pulumi.ComponentResource):
    """nginx on EC2: TLS, API keys, rate limits and streaming in front of the tunnel."""

    public_ip: pulumi.Output[str]
    endpoint_url: pulumi.Output[str]
    wireguard_public_key: pulumi.Output[str]
    ssm_parameters: dict[str, str]
    home_wireguard_conf: pulumi.Output[str]
    """The home end's wg0.conf with its private key (secret)."""
    artifacts: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: EdgeGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:edge:EdgeGateway", name, None, opts)
        config = args.config
        edge = config.edge
        if edge is None:
            raise ValueError("EdgeGateway: the stack has no edge config")
        unknown = sorted(set(args.given_keys) - set(config.clients))
        if unknown or set(args.given_keys) != set(edge.client_key_secrets):
            raise ValueError(
                "EdgeGateway: given_keys must hold exactly the clients of "
                f"edge.client_key_secrets {sorted(edge.client_key_secrets)}, all in `clients` "
                f"(got {sorted(args.given_keys)})"
            )
        tunnel_node = config.cluster.nodes.get(config.cluster.wireguard_node or "")
        ingress = config.cluster.ingress_node_address
        if (
            tunnel_node is not None
            and ingress is not None
            and ingress != tunnel_node.address
            and edge.wireguard.home_lan_interface is None
        ):
            raise ValueError(
                f"EdgeGateway: the ingress {ingress} is not the tunnel node "
                f"{tunnel_node.address}; set edge.wireguard.home_lan_interface so the node "
                "forwards the edge's traffic to it"
            )
        on_aws = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self_only = pulumi.ResourceOptions(parent=self)

        def named(resource: str) -> dict[str, str]:
            return {"Name": f"llm-platform-{config.stack_name}-edge-{resource}"}

        # Network.
        network = edge.network
        # What must be in place before the instance boots: cloud-init installs packages
        # and reads SSM in its first minute, so the route out and the role come first.
        before_boot: list[pulumi.Resource] = []
        internet: list[pulumi.Resource] = []  # an Elastic IP needs the gateway attached
        if network.existing_vpc_id and network.existing_subnet_id:
            vpc_id: pulumi.Input[str] = network.existing_vpc_id
            subnet_id: pulumi.Input[str] = network.existing_subnet_id
        else:
            vpc = aws.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=str(network.vpc_cidr),
                enable_dns_hostnames=True,
                enable_dns_support=True,
                tags=named("vpc"),
                opts=on_aws,
            )
            gateway = aws.ec2.InternetGateway(
                f"{name}-igw", vpc_id=vpc.id, tags=named("igw"), opts=on_aws
            )
            subnet = aws.ec2.Subnet(
                f"{name}-subnet",
                vpc_id=vpc.id,
                cidr_block=str(network.public_subnet_cidr),
                map_public_ip_on_launch=False,
                tags=named("public"),
                opts=on_aws,
            )
            routes = aws.ec2.RouteTable(
                f"{name}-routes",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
                tags=named("public"),
                opts=on_aws,
            )
            association = aws.ec2.RouteTableAssociation(
                f"{name}-routes-subnet", subnet_id=subnet.id, route_table_id=routes.id, opts=on_aws
            )
            # Nothing uses the VPC's default group: with no rules, nothing can by accident.
            aws.ec2.DefaultSecurityGroup(
                f"{name}-default-sg", vpc_id=vpc.id, tags=named("default-sg"), opts=on_aws
            )
            if args.log_target is not None:
                aws.ec2.FlowLog(
                    f"{name}-flow-logs",
                    vpc_id=vpc.id,
                    traffic_type="ALL",
                    log_destination_type="s3",
                    log_destination=args.log_target.flow_log_destination(),
                    max_aggregation_interval=600,
                    tags=named("flow-logs"),
                    opts=on_aws,
                )
            vpc_id, subnet_id = vpc.id, subnet.id
            internet.append(gateway)
            before_boot += [gateway, association]

        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=vpc_id,
            description="llm-platform edge: web ports to clients, WireGuard to home",
            ingress=security_group_ingress(config),  # type: ignore[arg-type]
            egress=security_group_egress(config),  # type: ignore[arg-type]
            tags=named("sg"),
            opts=on_aws,
        )

        # WireGuard keys: 32 random bytes each, clamped to X25519 private keys.
        edge_random = random.RandomBytes(f"{name}-wg-edge", length=32, opts=self_only)
        home_random = random.RandomBytes(f"{name}-wg-home", length=32, opts=self_only)
        edge_private: pulumi.Output[str] = _secret(
            edge_random.base64.apply(private_key_from_random_bytes)
        )
        home_private: pulumi.Output[str] = _secret(
            home_random.base64.apply(private_key_from_random_bytes)
        )
        # Public keys are derived from secrets but are themselves public.
        self.wireguard_public_key = pulumi.Output.unsecret(edge_private.apply(wireguard_public_key))
        home_public = pulumi.Output.unsecret(home_private.apply(wireguard_public_key))

        # Instance role, and the key only it (and the deployer) may use.
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=named("role"),
            opts=on_aws,
        )
        self.ssm_parameters = parameter_names(config)
        region = config.aws.region
        invoke = pulumi.InvokeOutputOptions(provider=args.provider, parent=self)
        caller = aws.get_caller_identity_output(opts=invoke)
        # The identity running `pulumi up`: the role behind an assumed-role session.
        deployer: pulumi.Input[str] = (
            config.aws.deployer_arn
            or aws.iam.get_session_context_output(arn=caller.arn, opts=invoke).issuer_arn
        )
        arns_by_purpose = caller.account_id.apply(
            lambda account: {
                purpose: parameter_arn(region=region, account_id=account, name=n)
                for purpose, n in self.ssm_parameters.items()
            }
        )
        parameter_arns = arns_by_purpose.apply(lambda arns: sorted(arns.values()))
        # The key encrypts the secret parameters only: the client config is plain text.
        encrypted_arns = arns_by_purpose.apply(
            lambda arns: sorted(
                arn for purpose, arn in arns.items() if purpose in SECRET_PARAMETERS
            )
        )
        key = aws.kms.Key(
            f"{name}-parameters-key",
            description=f"llm-platform {config.stack_name} edge: its SSM parameters",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(caller.account_id, encrypted_arns, role.arn, deployer).apply(
                lambda v: parameters_key_policy(
                    account_id=v[0],
                    region=region,
                    parameter_arns=v[1],
                    reader_arn=v[2],
                    writer_arn=v[3],
                )
            ),
            tags=named("parameters-key"),
            opts=on_aws,
        )
        aws.kms.Alias(
            f"{name}-parameters-key-alias",
            name=f"alias/llm-platform-{config.stack_name}-edge-parameters",
            target_key_id=key.key_id,
            opts=on_aws,
        )

        # Secrets in SSM under that key, never in user-data.
        values: dict[str, pulumi.Output[str]] = {
            "api_keys": pulumi.Output.all(
                generated=pulumi.Output.all(**args.edge_keys),
                given=pulumi.Output.all(**args.given_keys),
            ).apply(
                # `Output.all()` with no arguments gives a list: `dict` makes it a mapping.
                lambda keys: api_key_set(
                    generated=dict(keys["generated"]), given=dict(keys["given"])
                )
            ),
            "upstream_keys": pulumi.Output.all(**args.upstream_keys).apply(
                lambda keys: json.dumps(dict(keys), sort_keys=True)
            ),
            "wireguard_key": edge_private,
        }
        parameters = {
            purpose: aws.ssm.Parameter(
                f"{name}-param-{purpose.replace('_', '-')}",
                name=parameter,
                type="SecureString",
                key_id=key.arn,
                value=_secret(values[purpose]),
                description=f"llm-platform edge: {purpose.replace('_', ' ')}",
                tags=named(purpose.replace("_", "-")),
                opts=on_aws,
            )
            for purpose, parameter in sorted(self.ssm_parameters.items())
            if purpose in SECRET_PARAMETERS
        }
        clients = client_config(config)
        # Who may in and each client's limits: read by the same refresh as the keys, so a
        # client change reloads nginx instead of replacing the instance (user-data).
        parameters["client_config"] = aws.ssm.Parameter(
            f"{name}-param-client-config",
            name=self.ssm_parameters["client_config"],
            type="String",
            insecure_value=clients.parameter_value(),
            description="llm-platform edge: client config (nginx client files)",
            tags=named("client-config"),
            opts=on_aws,
        )
        read_parameters = aws.iam.RolePolicy(
            f"{name}-read-parameters",
            role=role.id,
            policy=pulumi.Output.all(caller.account_id, parameter_arns).apply(
                lambda v: instance_policy(v[1], region=region, account_id=v[0])
            ),
            opts=on_aws,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-profile", role=role.name, tags=named("profile"), opts=on_aws
        )
        before_boot += [read_parameters, *parameters.values()]

        # The address exists before the instance: its network interface carries the
        # Elastic IP from the first packet, so cloud-init never runs without a way out.
        interface = aws.ec2.NetworkInterface(
            f"{name}-eni",
            subnet_id=subnet_id,
            security_groups=[group.id],
            description="llm-platform edge",
            tags=named("eni"),
            opts=on_aws,
        )
        address = aws.ec2.Eip(
            f"{name}-eip",
            domain="vpc",
            network_interface=interface.id,
            tags=named("eip"),
            opts=pulumi.ResourceOptions.merge(on_aws, pulumi.ResourceOptions(depends_on=internet)),
        )
        before_boot.append(address)

        # The instance.
        ami = aws.ec2.get_ami_output(
            most_recent=True,
            owners=[UBUNTU_OWNER],
            filters=[
                {
                    "name": "name",
                    "values": [
                        f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{_ami_arch(edge.arch)}-server-*"
                    ],
                },
                {"name": "architecture", "values": [edge.arch]},
                {"name": "virtualization-type", "values": ["hvm"]},
            ],
            opts=pulumi.InvokeOutputOptions(provider=args.provider, parent=self),
        )
        user_data = pulumi.Output.all(home_public, args.upstream_ca_pem).apply(
            lambda v: render_cloud_init(
                cloud_init_settings(
                    config,
                    parameters=self.ssm_parameters,
                    home_public_key=v[0],
                    upstream_ca_pem=v[1],
                )
            )
        )
        aws.ec2.Instance(
            f"{name}-instance",
            ami=ami.id,
            instance_type=edge.instance_type,
            primary_network_interface={"network_interface_id": interface.id},
            iam_instance_profile=profile.name,
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "disabled",
            },
            root_block_device={
                "volume_type": "gp3",
                "volume_size": edge.root_volume_gib,
                "encrypted": True,
                "delete_on_termination": True,
                "tags": {**config.aws.tags, **named("root")},
            },
            user_data_base64=user_data.apply(compress_user_data),
            user_data_replace_on_change=True,
            monitoring=True,
            tags=named("instance"),
            opts=pulumi.ResourceOptions.merge(
                on_aws,
                pulumi.ResourceOptions(
                    # A newer AMI is taken by replacing the instance on purpose, not by drift.
                    ignore_changes=["ami"],
                    # The network interface (and its address) outlives the instance, and an
                    # interface is attached to one instance at a time.
                    delete_before_replace=True,
                    depends_on=before_boot,
                ),
            ),
        )
        self.public_ip = address.public_ip
        host = edge.domain or None
        if edge.route53_zone_id is not None and edge.domain is not None:
            aws.route53.Record(
                f"{name}-dns",
                zone_id=edge.route53_zone_id,
                name=edge.domain,
                type="A",
                ttl=300,
                records=[address.public_ip],
                opts=on_aws,
            )
        self.endpoint_url = (
            pulumi.Output.from_input(f"https://{host}/v1")
            if host
            else address.public_ip.apply(lambda ip: f"https://{ip}/v1")
        )

        # The home end of the tunnel.
        wireguard = edge.wireguard

        def home_conf(private_key: str, edge_public_key: str, ip: str) -> str:
            return render_wireguard_home_conf(
                address=IPv4Interface(
                    f"{wireguard.home_address}/{wireguard.tunnel_cidr.prefixlen}"
                ),
                edge_public_key=edge_public_key,
                edge_endpoint_host=ip,
                edge_endpoint_port=wireguard.listen_port,
                edge_address=wireguard.edge_address,
                private_key=private_key,
                persistent_keepalive_seconds=wireguard.persistent_keepalive_seconds,
                forward_to_interface=wireguard.home_lan_interface,
            )

        self.home_wireguard_conf = _secret(
            pulumi.Output.all(home_private, self.wireguard_public_key, address.public_ip).apply(
                lambda v: home_conf(v[0], v[1], v[2])
            )
        )
        home_view = pulumi.Output.all(self.wireguard_public_key, address.public_ip).apply(
            lambda v: home_conf(REDACTED_KEY, v[0], v[1]).replace(REDACTED_KEY, REDACTED)
        )
        if config.cluster.mode == "bootstrap":
            self._home_over_ssh(name, args)
        self.artifacts = {
            "edge/nginx.conf": pulumi.Output.from_input(render_nginx_conf(nginx_settings(config))),
            # What the key refresh writes from the client-config parameter.
            "edge/clients-http.conf": pulumi.Output.from_input(clients.http),
            "edge/clients-limits.conf": pulumi.Output.from_input(clients.location),
            "edge/cloud-init.yaml": user_data,
            "edge/wg0-edge.conf": home_public.apply(
                lambda key: render_wireguard_edge_conf(
                    address=IPv4Interface(
                        f"{wireguard.edge_address}/{wireguard.tunnel_cidr.prefixlen}"
                    ),
                    listen_port=wireguard.listen_port,
                    home_public_key=key,
                    home_address=wireguard.home_address,
                    home_networks=(wireguard.home_lan_cidr,),
                    private_key_file="/etc/wireguard/wg0.key",
                )
            ),
            "edge/wg0-home.conf": home_view,
        }
        self.register_outputs(
            {
                "public_ip": self.public_ip,
                "endpoint_url": self.endpoint_url,
                "wireguard_public_key": self.wireguard_public_key,
                "ssm_parameters": self.ssm_parameters,
            }
        )

    def _home_over_ssh(self, name: str, args: EdgeGatewayArgs) -> None:
        """Install WireGuard on the home tunnel node and bring the tunnel up (bootstrap mode),
        after the node's k3s install; every `sudo` is non-interactive (`-n`), so a host
        without password-less sudo fails at once instead of waiting for a password."""
        if args.home_connection is None:
            raise ValueError("EdgeGateway: bootstrap mode needs the home node's SSH connection")
        command.remote.Command(
            f"{name}-home-wireguard",
            connection=args.home_connection,
            # The config (with its private key) arrives on stdin, never on a command line.
            create=(
                "set -eu; command -v wg-quick >/dev/null || "
                "(sudo -n apt-get update -qq && sudo -n apt-get install -y -qq wireguard-tools); "
                "umask 077; sudo -n install -m 0600 /dev/stdin /etc/wireguard/wg0.conf; "
                "sudo -n systemctl enable wg-quick@wg0; sudo -n systemctl restart wg-quick@wg0"
            ),
            delete=(
                "set -eu; sudo -n systemctl disable --now wg-quick@wg0 || true; "
                "sudo -n rm -f /etc/wireguard/wg0.conf"
            ),
            stdin=self.home_wireguard_conf,
            triggers=[self.home_wireguard_conf],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.home_node_ready),
                additional_secret_outputs=["stdout", "stderr"],
            ),
        )


REDACTED_KEY = "UkVEQUNURUQtUkVEQUNURUQtUkVEQUNURUQtUkVEQUM="
"""A syntactically valid stand-in key, replaced by a note in the rendered home config."""


def _ami_arch(arch: str) -> str:
    """Ubuntu's name for an architecture in AMI names."""
    return "arm64" if arch == "arm64" else "amd64"


def _secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    """The value as a secret Output (typed for mypy)."""
    secret: pulumi.Output[str] = pulumi.Output.secret(value)
    return secret

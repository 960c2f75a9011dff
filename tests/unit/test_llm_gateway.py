"""The LLM gateway component under the recording mocks, per environment.

The component runs alone (not through `__main__.py`), with distinctive placeholder
secrets, so each test can say exactly which resource a secret must (or must never)
reach. Core objects are validated with kubernetes-validate (strict, the cluster's
Kubernetes minor), CNPG custom resources and the Barman Cloud plugin's ObjectStore with
the schemas of the CRDs their pinned charts install.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components import versions
from components.config import PlatformConfig, parse_platform_config
from components.llm_gateway import pod
from components.llm_gateway.gateway import (
    CONFIG_HASH_ANNOTATION,
    LlmGateway,
    LlmGatewayArgs,
    mcp_header_envs,
)
from components.llm_gateway.migrations import job_name
from components.llm_gateway.postgres import GatewayDatabase, GatewayDatabaseArgs
from tests.support import (
    TEST_IDENTITY,
    TEST_ISSUER_HOST,
    secret_placeholder,
    stack_config,
    stack_values,
)
from tests.unit.manifest_checks import (
    manifest,
    validate_against_crd,
    validate_core,
    validate_custom_resource,
)
from tools.mock_engine import SECRET, ProgramRun, RecordedResource, config_for_engine, run_program

DOMAIN = "lab.example.internal"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
SCHEDULED_BACKUP = "kubernetes:postgresql.cnpg.io/v1:ScheduledBackup"
OBJECT_STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"
DYNAMIC = "pulumi-python:dynamic:Resource"
CORE_TYPES = re.compile(r"^kubernetes:(core|apps|batch|policy|autoscaling|networking\.k8s\.io)/")


def _placeholders(config: PlatformConfig) -> dict[str, str]:
    cloud = {
        m.api_key_env: secret_placeholder(m.api_key_env)
        for m in config.llm_gateway.cloud_models.values()
    }
    clients = {c: secret_placeholder(f"client-{c}") for c in config.clients}
    return {**cloud, **clients, **{env: secret_placeholder(env) for env in mcp_header_envs(config)}}


def _run(config: PlatformConfig, *, stack: str, mesh_ready: bool = True) -> ProgramRun:
    placeholders = _placeholders(config)

    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_aws as aws
        import pulumi_kubernetes as k8s

        from components.ingress.publish import IngressHandle

        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("kubeconfig"))
        aws_provider = aws.Provider("aws", region=config.aws.region)
        mesh = k8s.helm.v3.Release(
            "linkerd", chart="linkerd-control-plane", opts=pulumi.ResourceOptions(provider=provider)
        )
        gateway = LlmGateway(
            "gateway",
            LlmGatewayArgs(
                config=config,
                provider=provider,
                aws_provider=aws_provider,
                workload_identity=TEST_IDENTITY,
                ingress=IngressHandle(domain=DOMAIN, issuer_name="internal-ca", provider=provider),
                cloud_api_keys={
                    m.api_key_env: pulumi.Output.secret(placeholders[m.api_key_env])
                    for m in config.llm_gateway.cloud_models.values()
                },
                client_keys={c: pulumi.Output.secret(placeholders[c]) for c in config.clients},
                mcp_header_secrets={
                    env: pulumi.Output.secret(placeholders[env]) for env in mcp_header_envs(config)
                },
                mesh_ready=[mesh] if mesh_ready else [],
            ),
        )
        pulumi.export("client_keys", gateway.client_keys)
        pulumi.export("master_key", gateway.master_key)
        pulumi.export("public_url", gateway.public_url)
        return {"gateway": gateway}

    return run_program(
        stack=stack, config=config_for_engine(stack_values(stack)), secret_keys=[], program=program
    )


@pytest.fixture(scope="module")
def gateway_run() -> Callable[[str], ProgramRun]:
    """`gateway_run("prod")`: the gateway of a committed stack config, run once per module."""
    runs: dict[str, ProgramRun] = {}

    def get(stack: str) -> ProgramRun:
        if stack not in runs:
            runs[stack] = _run(stack_config(stack), stack=stack)
        return runs[stack]

    return get


StackRun = Callable[[str], ProgramRun]


def _one(run: ProgramRun, type_token: str) -> RecordedResource:
    (resource,) = run.of_type(type_token)
    return resource


def _server(run: ProgramRun) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = _one(run, DEPLOYMENT)
    pod_spec = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    return pod_spec, container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deployment_runs_the_pinned_image_hardened(gateway_run: StackRun, stack: str) -> None:
    run = gateway_run(stack)
    deployment = _one(run, DEPLOYMENT)
    spec = deployment.inputs["spec"]
    pod_spec, container = _server(run)
    assert deployment.inputs["metadata"]["name"] == "litellm"
    assert container["image"] == versions.LITELLM_PROXY.ref
    assert container["args"][:4] == ["--config", "/etc/litellm/config.yaml", "--port", "4000"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert set(container["resources"]) == {"requests", "limits"}
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod_spec["serviceAccountName"] == "litellm"
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    (spread,) = pod_spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["linkerd.io/inject"] == "enabled"
    assert annotations["prometheus.io/scrape"] == "true"
    assert deployment.provider is not None and deployment.provider.endswith("::k8s")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_path_litellm_writes_is_a_mounted_empty_dir(
    gateway_run: StackRun, stack: str
) -> None:
    pod_spec, container = _server(gateway_run(stack))
    empty = {v["name"] for v in pod_spec["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    writable = [path for path, volume in mounts.items() if volume in empty]
    assert "/tmp" in writable
    env = _env(container)
    paths = ["HOME", "TMPDIR", "XDG_CACHE_HOME", "LITELLM_UI_PATH", "LITELLM_ASSETS_PATH"]
    for name in paths:
        value = env[name]["value"]
        assert any(value == p or value.startswith(p + "/") for p in writable), (name, value)


def test_pods_start_after_migrations_and_the_mesh(gateway_run: StackRun) -> None:
    run = gateway_run("prod")
    deployment = _one(run, DEPLOYMENT)
    job = _one(run, JOB)
    assert job.urn in deployment.depends_on
    assert run.named("linkerd").urn in deployment.depends_on
    assert _one(run, CLUSTER).urn in job.depends_on


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_config_hash_annotation_is_the_configmap_content_hash(
    gateway_run: StackRun, stack: str
) -> None:
    run = gateway_run(stack)
    (config_map,) = [
        r for r in run.of_type(CONFIG_MAP) if r.inputs["metadata"]["name"] == "litellm-config"
    ]
    data = config_map.inputs["data"]
    # The proxy's hooks ship next to the config (LiteLLM loads them from its directory);
    # the readiness callback only where a model autoscales to zero (prod).
    hooks = {"failover_hooks.py", "upstream_deadlines.py"}
    if stack == "prod":
        hooks |= {"readiness_hooks.py", "readiness_gate.py"}
    assert set(data) == {"config.yaml", *hooks}
    text = data["config.yaml"] + "".join(data[name] for name in sorted(hooks))
    annotations = _one(run, DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations[CONFIG_HASH_ANNOTATION] == hashlib.sha256(text.encode()).hexdigest()


def test_a_config_change_rolls_the_pods_and_runs_a_new_migration(gateway_run: StackRun) -> None:
    before = gateway_run("dev")
    values = stack_values("dev")
    router = values["llm_gateway"].setdefault("router", {})
    router["num_retries"] = stack_config("dev").llm_gateway.router.num_retries + 2
    after = _run(stack_config_from(values), stack="dev")

    def annotation(run: ProgramRun) -> str:
        template = _one(run, DEPLOYMENT).inputs["spec"]["template"]
        value: str = template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        return value

    assert annotation(before) != annotation(after)
    assert (
        _one(before, JOB).inputs["metadata"]["name"] != _one(after, JOB).inputs["metadata"]["name"]
    )
    same = _run(stack_config("dev"), stack="dev")
    assert annotation(same) == annotation(before)


def stack_config_from(values: dict[str, Any]) -> PlatformConfig:
    from components.config import parse_platform_config

    return parse_platform_config(values)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_value_reaches_a_configmap_a_plain_env_or_any_recorded_input(
    gateway_run: StackRun, stack: str
) -> None:
    run = gateway_run(stack)
    config = stack_config(stack)
    everything = json.dumps([r.inputs for r in run.resources], default=str)
    for value in _placeholders(config).values():
        assert value not in everything
    _, container = _server(run)
    env = _env(container)
    secret_names = {"LITELLM_MASTER_KEY", "DATABASE_URL", *mcp_header_envs(config)} | {
        m.api_key_env for m in config.llm_gateway.cloud_models.values()
    }
    if config.is_prod:
        secret_names.add("REDIS_PASSWORD")
    for name in secret_names:
        assert "value" not in env[name], name
        assert set(env[name]["valueFrom"]) == {"secretKeyRef"}, name
    for config_map in run.of_type(CONFIG_MAP):
        text = json.dumps(config_map.inputs["data"])
        # A secret Output anywhere in the data would turn the whole map into "[secret]".
        assert SECRET not in text
        assert "os.environ/LITELLM_MASTER_KEY" in text
    (secret,) = [
        r
        for r in run.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == "litellm-secrets"
    ]
    assert secret.inputs["stringData"] == SECRET
    assert run.outputs["master_key"] == SECRET and run.outputs["client_keys"] == SECRET


def test_dev_runs_one_replica_without_hpa_or_pdb(gateway_run: StackRun) -> None:
    run = gateway_run("dev")
    assert _one(run, DEPLOYMENT).inputs["spec"]["replicas"] == 1
    assert run.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler") == []
    assert run.of_type("kubernetes:policy/v1:PodDisruptionBudget") == []
    assert run.of_type("kubernetes:apps/v1:StatefulSet") == []


def test_prod_scales_between_two_and_the_configured_maximum(gateway_run: StackRun) -> None:
    run = gateway_run("prod")
    gateway = stack_config("prod").llm_gateway
    assert _one(run, DEPLOYMENT).inputs["spec"]["replicas"] >= 2
    hpa = _one(run, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]
    assert hpa["minReplicas"] >= 2
    assert hpa["maxReplicas"] == gateway.autoscale_max_replicas
    (metric,) = hpa["metrics"]
    assert metric["resource"]["target"]["averageUtilization"] == gateway.autoscale_cpu_percent
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "litellm",
    }
    pdb = _one(run, "kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    assert pdb["maxUnavailable"] == 1


def test_prod_shares_router_state_in_a_private_redis(gateway_run: StackRun) -> None:
    run = gateway_run("prod")
    statefulset = _one(run, "kubernetes:apps/v1:StatefulSet").inputs["spec"]
    (redis,) = statefulset["template"]["spec"]["containers"]
    assert redis["image"] == versions.REDIS.ref
    assert "REDIS_PASSWORD" not in " ".join(redis.get("args", []))
    assert redis["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "password"
    service = [
        r for r in run.of_type("kubernetes:core/v1:Service") if r.name.endswith("redis-service")
    ]
    assert service[0].inputs["spec"]["type"] == "ClusterIP"
    policy = _one(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {
            "podSelector": {
                "matchLabels": _one(run, DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]
            }
        }
    ]
    _, container = _server(run)
    assert _env(container)["REDIS_HOST"]["value"].startswith("litellm-redis.")


def test_dev_postgres_is_one_instance_without_backups_or_aws(gateway_run: StackRun) -> None:
    run = gateway_run("dev")
    spec = _one(run, CLUSTER).inputs["spec"]
    assert spec["instances"] == 1 and spec["enablePDB"] is False
    assert "plugins" not in spec
    assert run.of_type(SCHEDULED_BACKUP) == [] and run.of_type(OBJECT_STORE) == []
    assert [r for r in run.resources if r.type.startswith("aws:")] == []
    assert not any(r.protect for r in run.resources)


def test_prod_postgres_is_replicated_and_backed_up_through_the_plugin(
    gateway_run: StackRun,
) -> None:
    run = gateway_run("prod")
    postgres = stack_config("prod").llm_gateway.postgres
    spec = _one(run, CLUSTER).inputs["spec"]
    assert spec["instances"] == postgres.instances == 3
    assert spec["enablePDB"] is True
    assert "barmanObjectStore" not in spec.get("backup", {})
    (plugin,) = spec["plugins"]
    store = _one(run, OBJECT_STORE).inputs
    assert plugin["isWALArchiver"] is True
    assert plugin["parameters"]["barmanObjectName"] == store["metadata"]["name"]
    bucket = _one(run, "aws:s3/bucket:Bucket").inputs["bucket"]
    assert store["spec"]["configuration"]["destinationPath"].startswith(f"s3://{bucket}/")
    assert store["spec"]["retentionPolicy"] == f"{postgres.backup_retention_days}d"
    backup = _one(run, SCHEDULED_BACKUP).inputs["spec"]
    assert backup["method"] == "plugin" and backup["pluginConfiguration"]["name"] == plugin["name"]
    assert backup["schedule"] == postgres.backup_schedule
    releases = {r.inputs["chart"]: r.inputs for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert releases["cloudnative-pg"]["version"] == versions.CLOUDNATIVE_PG.version
    assert releases["plugin-barman-cloud"]["namespace"] == releases["cloudnative-pg"]["namespace"]


def test_prod_backup_bucket_is_private_versioned_encrypted_and_expiring(
    gateway_run: StackRun,
) -> None:
    run = gateway_run("prod")
    retention = stack_config("prod").llm_gateway.postgres.backup_retention_days
    block = _one(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    versioning = _one(run, "aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    encryption = _one(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    ).inputs
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    rules = {
        r["id"]: r
        for r in _one(
            run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        ).inputs["rules"]
    }
    backups = rules["expire-old-backups"]
    assert backups["status"] == "Enabled"
    assert backups["filter"]["prefix"] == "litellm-db/"
    assert backups["expiration"]["days"] > retention
    assert "noncurrentVersionExpiration" in rules["housekeeping"]
    for resource in run.resources:
        if resource.type.startswith("aws:"):
            assert resource.provider is not None and resource.provider.endswith("::aws"), (
                resource.name
            )


def test_prod_backups_assume_a_role_only_the_cluster_service_account_may_use(
    gateway_run: StackRun,
) -> None:
    run = gateway_run("prod")
    bucket = _one(run, "aws:s3/bucket:Bucket").inputs["bucket"]
    role = _one(run, "aws:iam/role:Role").inputs
    (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["StringEquals"] == {
        f"{TEST_ISSUER_HOST}:sub": "system:serviceaccount:llm-gateway:litellm-db",
        f"{TEST_ISSUER_HOST}:aud": "sts.amazonaws.com",
    }
    policy = json.loads(_one(run, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/litellm-db/*"}
    assert (
        run.of_type("aws:iam/user:User") == [] and run.of_type("aws:iam/accessKey:AccessKey") == []
    )
    assert not [r for r in run.of_type("kubernetes:core/v1:Secret") if "backup" in r.name]
    # barman-cloud in the plugin's sidecar trades the projected token for credentials
    store = _one(run, OBJECT_STORE).inputs["spec"]
    assert store["configuration"]["s3Credentials"] == {"inheritFromIAMRole": True}
    env = {e["name"]: e["value"] for e in store["instanceSidecarConfiguration"]["env"]}
    (source,) = _one(run, CLUSTER).inputs["spec"]["projectedVolumeTemplate"]["sources"]
    token = source["serviceAccountToken"]
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == f"/projected/{token['path']}"
    assert token["audience"] == "sts.amazonaws.com"
    assert env["AWS_ROLE_ARN"].startswith("arn:aws:iam::000000000000:role/llm-platform/")


def test_static_keys_are_an_opt_in_bounded_to_home_and_a_rotation_date() -> None:
    values = stack_values("prod")
    values["aws"]["backup_credentials"] = {
        "mode": "static_keys",
        "static_keys": {"source_cidrs": ["198.51.100.7/32"], "rotate_by": "2026-03-01"},
    }
    run = _run(parse_platform_config(values), stack="prod")
    assert run.of_type("aws:iam/role:Role") == []
    (key,) = run.of_type("aws:iam/accessKey:AccessKey")
    assert key.name.endswith("-key-2026-03-01"), "a new date is a new key"
    policy = json.loads(_one(run, "aws:iam/userPolicy:UserPolicy").inputs["policy"])
    for statement in policy["Statement"]:
        assert statement["Condition"] == {
            "IpAddress": {"aws:SourceIp": ["198.51.100.7/32"]},
            "DateLessThan": {"aws:CurrentTime": "2026-03-01T00:00:00Z"},
        }
    (credentials,) = [
        r for r in run.of_type("kubernetes:core/v1:Secret") if r.name.endswith("backup-credentials")
    ]
    assert credentials.inputs["stringData"] == SECRET
    store = _one(run, OBJECT_STORE).inputs["spec"]
    assert (
        store["configuration"]["s3Credentials"]["secretAccessKey"]["name"]
        == (credentials.inputs["metadata"]["name"])
    )
    assert "projectedVolumeTemplate" not in _one(run, CLUSTER).inputs["spec"]


def test_backups_with_web_identity_and_no_issuer_are_refused_before_anything_exists() -> None:
    config = stack_config("prod")

    def program() -> dict[str, Any]:
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        GatewayDatabase(
            "db",
            GatewayDatabaseArgs(
                config=config,
                provider=provider,
                aws_provider=aws.Provider("aws", region=config.aws.region),
            ),
        )
        return {}

    with pytest.raises(ValueError, match="workload_identity"):
        run_program(stack="prod", config={}, secret_keys=[], program=program)


def test_prod_data_resources_are_protected_and_retained(gateway_run: StackRun) -> None:
    run = gateway_run("prod")
    for type_token in ("aws:s3/bucket:Bucket", CLUSTER, OBJECT_STORE):
        resource = _one(run, type_token)
        assert resource.protect and resource.retain_on_delete, type_token


def test_migrations_job_waits_for_postgres_outside_the_mesh(gateway_run: StackRun) -> None:
    job = _one(gateway_run("prod"), JOB).inputs
    template = job["spec"]["template"]
    assert template["metadata"]["annotations"]["linkerd.io/inject"] == "disabled"
    (wait,) = template["spec"]["initContainers"]
    assert "pg_isready" in wait["command"][-1] and "seq 1 " in wait["command"][-1]
    (migrate,) = template["spec"]["containers"]
    assert migrate["image"] == versions.LITELLM_PROXY.ref
    assert "--skip_server_startup" in migrate["args"]
    assert "--enforce_prisma_migration_check" in migrate["args"]
    assert _env(migrate)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "uri"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    _, server = _server(gateway_run("prod"))
    assert _env(server)["DISABLE_SCHEMA_UPDATE"]["value"] == "true"
    assert _env(migrate)["DISABLE_SCHEMA_UPDATE"]["value"] == "false"


@given(
    tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True),
    digest=st.text("0123456789abcdef", min_size=64, max_size=64),
)
def test_migration_job_names_are_dns_labels_that_carry_tag_and_hash(tag: str, digest: str) -> None:
    name = job_name(image_tag=tag, config_digest=digest)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63
    assert name.endswith(digest[:10])


def test_migration_job_name_names_the_pinned_tag() -> None:
    name = job_name(image_tag=versions.LITELLM_PROXY.tag, config_digest="ab" * 32)
    assert "v1-83-14" in name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_client_gets_a_virtual_key_after_the_server(gateway_run: StackRun, stack: str) -> None:
    run = gateway_run(stack)
    config = stack_config(stack)
    keys = {r.inputs["key_alias"]: r for r in run.of_type(DYNAMIC) if "key_alias" in r.inputs}
    assert set(keys) == set(config.clients)
    deployment = _one(run, DEPLOYMENT)
    # One check that this machine reaches the admin API, before any key.
    (check,) = [r for r in run.of_type(DYNAMIC) if "key_alias" not in r.inputs]
    assert check.inputs["admin_url"] == f"https://api.{DOMAIN}"
    assert deployment.urn in check.depends_on
    for alias, resource in keys.items():
        client = config.clients[alias]
        assert deployment.urn in resource.depends_on
        assert check.urn in resource.depends_on
        assert resource.inputs["key"] == SECRET and resource.inputs["master_key"] == SECRET
        assert resource.inputs["admin_url"] == f"https://api.{DOMAIN}"
        assert resource.inputs["max_budget"] == client.max_budget_usd
        assert resource.inputs["models"] == sorted(client.models)
        # The MCP servers a key may use are owned only on a stack that has MCP servers.
        if config.llm_gateway.mcp_servers:
            assert resource.inputs["mcp_servers"] == sorted(client.mcp_servers)
        else:
            assert "mcp_servers" not in resource.inputs
    assert run.outputs["public_url"] == f"https://api.{DOMAIN}/v1"


def test_mcp_server_headers_reach_the_proxy_only_through_its_secret(
    gateway_run: StackRun,
) -> None:
    config = stack_config("prod")
    envs = mcp_header_envs(config)
    assert envs == ["MCP_GITHUB__AUTHORIZATION"]
    _, container = _server(gateway_run("prod"))
    assert _env(container)["MCP_GITHUB__AUTHORIZATION"]["valueFrom"] == {
        "secretKeyRef": {"name": "litellm-secrets", "key": "MCP_GITHUB__AUTHORIZATION"}
    }
    (config_map,) = [
        r for r in gateway_run("prod").of_type(CONFIG_MAP) if "config.yaml" in r.inputs["data"]
    ]
    rendered = yaml.safe_load(config_map.inputs["data"]["config.yaml"])
    assert rendered["mcp_servers"]["github"]["static_headers"] == {
        "Authorization": "os.environ/MCP_GITHUB__AUTHORIZATION"
    }
    assert "mcp_servers" not in yaml.safe_load(
        next(
            r for r in gateway_run("dev").of_type(CONFIG_MAP) if "config.yaml" in r.inputs["data"]
        ).inputs["data"]["config.yaml"]
    )


def test_an_mcp_header_without_its_secret_is_refused() -> None:
    config = stack_config("prod")
    with pytest.raises(Exception, match="no secret for MCP header env"):
        _run_without_cloud_keys(config, cloud=True)


def test_published_for_streaming_at_api(gateway_run: StackRun) -> None:
    route = _one(gateway_run("prod"), "kubernetes:traefik.io/v1alpha1:IngressRoute").inputs
    assert route["spec"]["routes"][0]["match"] == f"Host(`api.{DOMAIN}`)"
    assert route["spec"]["routes"][0]["services"][0] == {
        "kind": "Service",
        "name": "litellm",
        "port": 4000,
    }


def test_a_cloud_model_without_its_key_is_refused() -> None:
    config = stack_config("dev")
    with pytest.raises(Exception, match="no secret for cloud key env"):
        _run_without_cloud_keys(config)


def _run_without_cloud_keys(config: PlatformConfig, *, cloud: bool = False) -> None:
    """The gateway given no secrets (or, with `cloud`, only the cloud models' keys)."""

    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        from components.ingress.publish import IngressHandle

        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("kubeconfig"))
        LlmGateway(
            "gateway",
            LlmGatewayArgs(
                config=config,
                provider=provider,
                ingress=IngressHandle(domain=DOMAIN, issuer_name="ca", provider=provider),
                cloud_api_keys={
                    m.api_key_env: pulumi.Output.secret("key")
                    for m in config.llm_gateway.cloud_models.values()
                    if cloud
                },
            ),
        )
        return {}

    stack = config.environment
    run_program(
        stack=stack, config=config_for_engine(stack_values(stack)), secret_keys=[], program=program
    )


def _kubernetes_objects(run: ProgramRun) -> Iterator[RecordedResource]:
    for resource in run.resources:
        if (
            resource.type.startswith("kubernetes:")
            and resource.type != "kubernetes:helm.sh/v3:Release"
        ):
            yield resource


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_core_objects_are_valid_kubernetes(gateway_run: StackRun, stack: str) -> None:
    checked: set[str] = set()
    for resource in _kubernetes_objects(gateway_run(stack)):
        if CORE_TYPES.match(resource.type):
            validate_core(resource)
            checked.add(resource.type.rsplit(":", 1)[1])
    assert {"Deployment", "Job", "ConfigMap", "Secret", "Service", "ServiceAccount"} <= checked
    if stack == "prod":
        extra = {"StatefulSet", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
        assert extra <= checked


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cnpg_resources_match_their_crd_schemas(gateway_run: StackRun, stack: str) -> None:
    run = gateway_run(stack)
    cnpg = [r for r in run.resources if r.type.startswith("kubernetes:postgresql.cnpg.io/")]
    for resource in cnpg:
        validate_custom_resource(resource)
    assert len(cnpg) == (2 if stack == "prod" else 1)
    for store in run.of_type(OBJECT_STORE):
        validate_custom_resource(store)


def test_schema_checks_catch_a_wrong_field(gateway_run: StackRun) -> None:
    cluster = _one(gateway_run("prod"), CLUSTER)
    broken = RecordedResource(
        **{
            **cluster.__dict__,
            "inputs": {**cluster.inputs, "spec": {**cluster.inputs["spec"], "instance": 3}},
        }
    )
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(broken)
    store = _one(gateway_run("prod"), OBJECT_STORE)
    wrong = manifest(store)
    wrong["spec"] = {
        **wrong["spec"],
        "configuration": {**wrong["spec"]["configuration"], "s3Credential": {}},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate_against_crd(wrong, store.name)


def test_pod_module_paths_are_under_its_volumes() -> None:
    mounts = {m["mount_path"] for m in pod.writable_mounts()}
    assert {m["name"] for m in pod.writable_mounts()} == {v["name"] for v in pod.writable_volumes()}
    assert pod.TMP_DIR in mounts and pod.STATE_DIR in mounts


def test_the_server_runs_with_the_retry_back_off_the_live_tests_prove(
    gateway_run: StackRun,
) -> None:
    from components.llm_gateway.litellm_config import RETRY_BACKOFF_ENV

    _, container = _server(gateway_run("prod"))
    env = _env(container)
    assert RETRY_BACKOFF_ENV  # the tests run the proxy with exactly these
    for name, value in RETRY_BACKOFF_ENV.items():
        assert env[name] == {"name": name, "value": value}

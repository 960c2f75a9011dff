"""The data layer under the recording mocks: per environment, switched off, schemas, policy."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components import versions
from components.cluster.base import network_policies
from components.cluster.namespaces import platform_flows, platform_namespaces
from components.config import PlatformConfig
from components.data import embeddings, qdrant, snapshots
from components.data.layer import DataLayer, DataLayerArgs
from tests.support import (
    TEST_IDENTITY,
    TEST_ISSUER_HOST,
    dependency_names,
    stack_config,
    stack_values,
)
from tests.unit.manifest_checks import manifest, validate_against_crd, validate_core
from tools.mock_engine import ProgramRun, RecordedResource, config_for_engine, run_program

RELEASE = "kubernetes:helm.sh/v3:Release"
_RUNS: dict[tuple[str, bool], ProgramRun] = {}


def _config(stack: str, enabled: bool | None) -> PlatformConfig:
    config = stack_config(stack)
    if enabled is not None:
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"enabled": enabled})}
        )
    return config


def _program(config: PlatformConfig) -> Callable[[], dict[str, Any]]:
    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_aws as aws
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        aws_provider = aws.Provider("aws", region=config.aws.region)
        layer = DataLayer(
            "data",
            DataLayerArgs(
                config=config,
                provider=provider,
                aws_provider=aws_provider,
                workload_identity=TEST_IDENTITY,
            ),
        )
        return {
            "embeddings_model": layer.embeddings_model,
            "embeddings_api_base": layer.embeddings_api_base,
            "vector_db_url": layer.vector_db_url,
            "api_key_secret": layer.api_key_secret,
        }

    return program


def data_run(stack: str, enabled: bool | None = None) -> ProgramRun:
    """One run per stack; `enabled` None keeps the stack file's switch."""
    key = (stack, enabled if enabled is not None else stack_config(stack).data.enabled)
    if key not in _RUNS:
        _RUNS[key] = run_program(
            stack=stack,
            config=config_for_engine(stack_values(stack)),
            secret_keys=[],
            program=_program(_config(stack, enabled)),
        )
    return _RUNS[key]


def _validate_custom(resource: RecordedResource) -> None:
    validate_against_crd(manifest(resource), resource.name)


def _owned(run: ProgramRun) -> list[RecordedResource]:
    return [r for r in run.resources if r.custom and not r.type.startswith("pulumi:providers")]


def test_dev_deploys_nothing_by_default() -> None:
    assert stack_config("dev").data.enabled is False
    assert _owned(data_run("dev")) == []


def test_prod_switched_off_deploys_nothing() -> None:
    assert _owned(data_run("prod", enabled=False)) == []


def test_prod_renders_the_data_layer() -> None:
    run = data_run("prod")
    types = {r.type for r in _owned(run)}
    assert {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
        "kubernetes:core/v1:PersistentVolumeClaim",
        RELEASE,
        "kubernetes:batch/v1:CronJob",
        "aws:s3/bucket:Bucket",
    } <= types


def test_dev_with_the_layer_switched_on_has_no_snapshots_and_no_aws() -> None:
    run = data_run("dev", enabled=True)
    types = {r.type for r in _owned(run)}
    assert RELEASE in types
    assert "kubernetes:batch/v1:CronJob" not in types
    assert not any(t.startswith("aws:") for t in types)


def test_prod_without_an_aws_provider_is_refused() -> None:
    config = stack_config("prod")

    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        return {"d": DataLayer("data", DataLayerArgs(config=config, provider=provider))}

    with pytest.raises(Exception, match="aws_provider"):
        run_program(
            stack="prod",
            config=config_for_engine(stack_values("prod")),
            secret_keys=[],
            program=program,
        )


# --- embeddings --------------------------------------------------------------------------


def test_tei_serves_the_configured_model_at_its_pinned_revision() -> None:
    run = data_run("prod")
    deployment = run.named("data-embeddings")
    pod = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    data = stack_config("prod").data
    assert container["image"] == versions.TEI_CPU.ref
    args = container["args"]
    assert args[args.index("--model-id") + 1] == data.embeddings_hf_repo
    assert args[args.index("--revision") + 1] == data.embeddings_revision
    assert args[args.index("--served-model-name") + 1] == "bge-m3"
    assert args[args.index("--port") + 1] == str(embeddings.PORT)
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "embeddings-cache"
    assert deployment.inputs["spec"]["strategy"] == {"type": "Recreate"}


def test_tei_on_a_gpu_uses_the_cuda_image_and_the_gpu_class() -> None:
    config = stack_config("prod")
    data = config.data.model_copy(
        update={"embeddings_device": "gpu", "embeddings_gpu_class": "rtx-4090"}
    )
    pod = embeddings.pod_spec(data)
    (container,) = pod["containers"]
    assert container["image"] == versions.TEI_CUDA.ref
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["runtime_class_name"] == "nvidia"
    assert pod["node_selector"] == {"llm-platform.io/gpu-class": "rtx-4090"}
    cpu_pod = embeddings.pod_spec(config.data)
    assert "runtime_class_name" not in cpu_pod
    assert "nvidia.com/gpu" not in cpu_pod["containers"][0]["resources"]["limits"]


# --- qdrant -------------------------------------------------------------------------------


def test_qdrant_release_is_pinned_with_documented_values_and_a_secret_key() -> None:
    run = data_run("prod")
    release = run.named("data-qdrant")
    assert (release.inputs["chart"], release.inputs["version"]) == (
        versions.QDRANT.name,
        versions.QDRANT.version,
    )
    # The key reaches Qdrant by reference only: the values stay in clear for review.
    values = release.inputs["values"]
    assert values != "[secret]"
    assert values["apiKey"] is False
    assert values["env"] == [
        {
            "name": "QDRANT__SERVICE__API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}},
        }
    ]
    data = stack_config("prod").data
    assert values["replicaCount"] == data.vector_db_replicas
    assert values["persistence"]["size"] == f"{data.vector_db_storage_gib}Gi"
    assert values["podDisruptionBudget"]["enabled"] is True
    assert release.protect is True
    secret = run.named("data-qdrant-api-key")
    assert secret.inputs["stringData"] == "[secret]"
    assert "data-qdrant-api-key" in dependency_names(run, release)


def test_dev_qdrant_is_not_protected() -> None:
    assert data_run("dev", enabled=True).named("data-qdrant").protect is False


def test_outputs_name_the_model_url_and_secret() -> None:
    assert data_run("prod").program_globals == {
        "embeddings_model": "bge-m3",
        "embeddings_api_base": "http://embeddings.data.svc.cluster.local:8080/v1",
        "vector_db_url": "http://qdrant.data.svc.cluster.local:6333",
        "api_key_secret": "qdrant-api-key",
    }
    assert set(data_run("dev").program_globals.values()) == {None}


def _data_namespace_policies(config: PlatformConfig) -> dict[str, dict[str, Any]]:
    """The cluster base's NetworkPolicies of the data namespace and of the gateway's."""
    flows = platform_flows(config)
    specs = {spec.name: spec for spec in platform_namespaces(config)}
    return {
        f"{ns}/{name}": dict(policy)
        for ns in ("data", "llm-gateway")
        for name, policy in network_policies(specs[ns], flows).items()
    }


def test_only_the_gateway_and_data_namespaces_reach_qdrant() -> None:
    policies = _data_namespace_policies(stack_config("prod"))
    from_peers = {
        name.removeprefix("data/allow-from-")
        for name in policies
        if name.startswith("data/allow-from-")
    }
    # Prometheus scrapes (observability); only the gateway's namespace is a client.
    assert from_peers == {"llm-gateway", "observability"}
    (rule,) = policies["data/allow-from-llm-gateway"]["ingress"]
    assert {p["port"] for p in rule["ports"]} == {8080, qdrant.HTTP_PORT, qdrant.GRPC_PORT, 4143}
    # The gateway's side lets the same ports out (it was the egress that was missing).
    (egress,) = policies["llm-gateway/allow-to-data"]["egress"]
    assert {p["port"] for p in egress["ports"]} == {p["port"] for p in rule["ports"]}
    assert policies["data/allow-same-namespace"]["ingress"] == [{"from_": [{"pod_selector": {}}]}]


def test_linkerd_policy_admits_litellm_and_the_data_namespace() -> None:
    run = data_run("prod")
    authn = run.named("data-mesh-clients").inputs["spec"]["identities"]
    assert authn == [
        "litellm.llm-gateway.serviceaccount.identity.linkerd.cluster.local",
        "*.data.serviceaccount.identity.linkerd.cluster.local",
    ]
    servers = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in run.resources
        if r.type.endswith(":Server")
    }
    assert {name: spec["port"] for name, spec in servers.items()} == {
        "qdrant-http": 6333,
        "qdrant-grpc": 6334,
        "embeddings-http": 8080,
    }
    policies = [r for r in run.resources if r.type.endswith(":AuthorizationPolicy")]
    assert {p.inputs["spec"]["targetRef"]["name"] for p in policies} == set(servers)


def test_no_linkerd_policy_without_the_mesh() -> None:
    config = stack_config("prod")
    config = config.model_copy(update={"mesh": config.mesh.model_copy(update={"enabled": False})})
    run = run_program(
        stack="prod",
        config=config_for_engine(stack_values("prod")),
        secret_keys=[],
        program=_program(config),
    )
    assert not [r for r in run.resources if "linkerd" in r.type]
    (rule,) = _data_namespace_policies(config)["data/allow-from-llm-gateway"]["ingress"]
    assert 4143 not in {p["port"] for p in rule["ports"]}


# --- snapshots ----------------------------------------------------------------------------


def test_snapshot_cronjob_uses_the_pinned_curl_and_its_service_account_token() -> None:
    run = data_run("prod")
    cron = run.named("data-snapshot-cronjob")
    data = stack_config("prod").data
    assert cron.inputs["spec"]["schedule"] == data.snapshot_schedule
    pod = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == versions.CURL.ref
    env = {e["name"]: e for e in container["env"]}
    # Keys are mounted files, never environment variables.
    assert all("valueFrom" not in e for e in env.values()), env
    assert env["QDRANT_NODES"]["value"] == str(data.vector_db_replicas)
    assert env["S3_BUCKET"]["value"] == run.named("data-snapshots").inputs["bucket"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["secrets"]["mountPath"] == env["SECRETS_DIR"]["value"]
    assert mounts["secrets"]["readOnly"] is True
    (secrets,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    files = {
        item["path"]: (source["secret"]["name"], item["key"])
        for source in secrets["projected"]["sources"]
        for item in source["secret"]["items"]
    }
    # Only the Qdrant key: no AWS key anywhere, the token of its own service account for STS.
    assert files == {"qdrant-api-key": ("qdrant-api-key", "api-key")}
    assert secrets["projected"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert run.of_type("aws:iam/user:User") == []
    assert pod["serviceAccountName"] == snapshots.SERVICE_ACCOUNT
    assert pod["automountServiceAccountToken"] is False
    (volume,) = [v for v in pod["volumes"] if v["name"] == "aws-token"]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "sts.amazonaws.com"
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"]["value"] == snapshots.TOKEN_PATH
    role = run.named("data-snapshot-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"][f"{TEST_ISSUER_HOST}:sub"] == (
        "system:serviceaccount:data:qdrant-snapshots"
    )
    account = run.named("data-snapshot-service-account").inputs
    assert account["metadata"]["name"] == snapshots.SERVICE_ACCOUNT
    assert "data-qdrant" in dependency_names(run, cron)
    rules = {r["id"]: r for r in run.named("data-snapshots-lifecycle").inputs["rules"]}
    assert rules["expire-old-snapshots"]["expiration"]["days"] == data.snapshot_retention_days


def test_snapshot_writer_may_only_write_its_prefix() -> None:
    document = json.loads(snapshots.bucket_policy_document("arn:aws:s3:::b"))
    resources = {r for s in document["Statement"] for r in s["Resource"]}
    assert resources == {"arn:aws:s3:::b", "arn:aws:s3:::b/qdrant/*"}
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert "s3:DeleteObject" not in actions


def test_pod_spec_takes_exactly_one_kind_of_credentials() -> None:
    common: dict[str, Any] = {
        "replicas": 1,
        "namespace": "data",
        "region": "eu-west-1",
        "api_key_secret": "k",
        "bucket": "b",
        "script_configmap": "s",
    }
    with pytest.raises(ValueError, match="exactly one"):
        snapshots.cronjob_pod_spec(**common)
    with pytest.raises(ValueError, match="exactly one"):
        snapshots.cronjob_pod_spec(**common, role_arn="arn", credentials_secret="c")
    static = snapshots.cronjob_pod_spec(**common, credentials_secret="c")
    names = {e["name"] for e in static["containers"][0]["env"]}
    assert "AWS_ROLE_ARN" not in names and "AWS_SECRET_ACCESS_KEY" not in names
    (secrets,) = [v for v in static["volumes"] if v["name"] == "secrets"]
    files = {
        item["path"]: source["secret"]["name"]
        for source in secrets["projected"]["sources"]
        for item in source["secret"]["items"]
    }
    # The static key is two more files of the mounted secrets, from its own Secret.
    assert files == {"qdrant-api-key": "k", "AWS_ACCESS_KEY_ID": "c", "AWS_SECRET_ACCESS_KEY": "c"}


FAKE_CURL = r"""#!/bin/sh
# curl as the snapshot script sees it: Qdrant, STS and S3 answer from here; every call
# is logged, one line of arguments each.
printf '%s\n' "$*" >> "$CALLS"
# What a call hands curl on its standard input (`--config -`: the keys), on the next line.
case "$*" in *"--config -"*) printf 'config: %s\n' "$(tr '\n' ' ')" >> "$CALLS" ;; esac
case "$*" in
  *AssumeRoleWithWebIdentity*)
    case "$*" in *"WebIdentityToken@$AWS_WEB_IDENTITY_TOKEN_FILE"*) ;; *) exit 22 ;; esac
    cat "$STS_ANSWER"; exit 0 ;;
  *" -T "*) exit 0 ;;
  *"-X DELETE"*) exit 0 ;;
  *"-X POST"*) echo '{"result":{"name":"docs-1.snapshot","size":3}}'; exit 0 ;;
  *" -o "*)
    while [ "$1" != "-o" ]; do shift; done
    echo snapshot > "$2"; exit 0 ;;
  *"/collections"*) echo '{"result":{"collections":[{"name":"docs"}]}}'; exit 0 ;;
esac
exit 99
"""
STS_OK = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>TOKEN-abc/def+ghi=</SessionToken>
      <SecretAccessKey>SECRET-xyz</SecretAccessKey>
      <Expiration>2026-01-01T01:00:00Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>
"""


def _snapshot_run(
    tmp_path: Path, sts_answer: str, secrets: dict[str, str] | None = None, **env: str
) -> tuple[int, str, list[str]]:
    """Run the snapshot script with `curl` faked and `secrets` as its mounted key files
    (the Qdrant key always); (exit status, stderr, curl calls, each followed by the
    config it read from its standard input)."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, value in {snapshots.QDRANT_KEY_FILE: "qdrant-key", **(secrets or {})}.items():
        (secrets_dir / name).write_text(value)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    (tmp_path / "work").mkdir()
    (tmp_path / "sts.xml").write_text(sts_answer)
    (tmp_path / "token").write_text("eyJ-service-account-token")
    script = tmp_path / "snapshot.sh"
    script.write_text(snapshots.snapshot_script())
    done = subprocess.run(
        ["sh", str(script)],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "CALLS": str(tmp_path / "calls"),
            "STS_ANSWER": str(tmp_path / "sts.xml"),
            "WORK_DIR": str(tmp_path / "work"),
            "SECRETS_DIR": str(secrets_dir),
            "QDRANT_NODES": "1",
            "QDRANT_NAMESPACE": "data",
            "S3_BUCKET": "snapshots-bucket",
            "AWS_REGION": "eu-west-1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return done.returncode, done.stderr, calls


def test_snapshot_script_signs_each_upload_with_fresh_role_credentials(tmp_path: Path) -> None:
    status, stderr, calls = _snapshot_run(
        tmp_path,
        STS_OK,
        AWS_ROLE_ARN="arn:aws:iam::000000000000:role/writer",
        AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
    )
    assert status == 0, stderr
    (sts,) = [c for c in calls if "AssumeRoleWithWebIdentity" in c]
    assert "https://sts.eu-west-1.amazonaws.com/" in sts
    assert "RoleArn=arn:aws:iam::000000000000:role/writer" in sts
    (upload,) = [c for c in calls if " -T " in c]
    config = calls[calls.index(upload) + 1]
    assert "--aws-sigv4 aws:amz:eu-west-1:s3" in upload
    # The role's credentials reach curl on its standard input, never in its arguments.
    assert config == (
        'config: user = "ASIAEXAMPLE:SECRET-xyz" header = "x-amz-security-token: '
        'TOKEN-abc/def+ghi=" '
    )
    assert "SECRET-xyz" not in upload and "TOKEN-abc" not in upload
    assert "https://snapshots-bucket.s3.eu-west-1.amazonaws.com/qdrant/" in upload
    assert upload.endswith("/node-0/docs.snapshot")
    assert calls.index(sts) < calls.index(upload)
    assert not [c for c in calls if "qdrant-key" in c and not c.startswith("config: ")]


def test_snapshot_script_uploads_nothing_when_sts_gives_no_credentials(tmp_path: Path) -> None:
    status, stderr, calls = _snapshot_run(
        tmp_path,
        "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>",
        AWS_ROLE_ARN="arn:aws:iam::000000000000:role/writer",
        AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
    )
    assert status != 0 and "STS returned no credentials" in stderr
    assert not [c for c in calls if " -T " in c]


def test_snapshot_script_with_a_static_key_never_calls_sts(tmp_path: Path) -> None:
    status, stderr, calls = _snapshot_run(
        tmp_path,
        STS_OK,
        {snapshots.ACCESS_KEY_ID_FILE: "AKIAEXAMPLE", snapshots.SECRET_ACCESS_KEY_FILE: "static"},
    )
    assert status == 0, stderr
    assert not [c for c in calls if "AssumeRoleWithWebIdentity" in c]
    (upload,) = [c for c in calls if " -T " in c]
    assert calls[calls.index(upload) + 1] == 'config: user = "AKIAEXAMPLE:static" '


def test_snapshot_script_without_its_key_files_stops_before_any_call(tmp_path: Path) -> None:
    status, stderr, calls = _snapshot_run(
        tmp_path, STS_OK, {snapshots.ACCESS_KEY_ID_FILE: "AKIAEXAMPLE"}
    )
    assert status != 0 and "missing secret file" in stderr and "AWS_SECRET_ACCESS_KEY" in stderr
    assert calls == []


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_snapshot_script_passes_shellcheck(tmp_path: Path) -> None:
    script = tmp_path / "snapshot.sh"
    script.write_text(snapshots.snapshot_script())
    result = subprocess.run(
        ["shellcheck", "-s", "sh", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_snapshot_script_walks_every_node_and_cleans_up() -> None:
    script = snapshots.snapshot_script()
    assert 'while [ "$node" -lt "$QDRANT_NODES" ]' in script
    assert "qdrant-${node}.qdrant-headless" in script
    assert "--aws-sigv4" in script
    assert script.index("-T ") < script.index("-X DELETE")


# --- schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "enabled"), [("prod", None), ("dev", True)])
def test_every_object_passes_its_schema(stack: str, enabled: bool | None) -> None:
    run = data_run(stack, enabled)
    k8s_objects = [r for r in _owned(run) if r.type.startswith("kubernetes:")]
    core = [
        r
        for r in k8s_objects
        if r.type.startswith(
            (
                "kubernetes:core/",
                "kubernetes:apps/",
                "kubernetes:batch/",
                "kubernetes:networking.k8s.io/",
            )
        )
    ]
    assert len(core) >= 4  # cache PVC, Deployment, Service, API key Secret (+ snapshots on prod)
    for resource in core:
        validate_core(resource)
    custom = [r for r in k8s_objects if r not in core and r.type != RELEASE]
    assert len(custom) == 7  # MeshTLSAuthentication, 3 Servers, 3 AuthorizationPolicies
    for resource in custom:
        _validate_custom(resource)

"""DataLayer: the RAG data layer, an embeddings server and a vector database.

Creates, only when `data.enabled` (otherwise nothing), in the data namespace:

* the embeddings server (`embeddings`): text-embeddings-inference, pinned image for CPU
  or CUDA per `data.embeddings_device`, serving `data.embeddings_hf_repo` at its pinned
  revision under the name `data.embeddings_model`; a Deployment (one replica, Recreate:
  its weight cache is a ReadWriteOnce PVC), a Service (`http` 8080, `metrics` 9000);
  why TEI: `components.data.embeddings`;
* Qdrant from its pinned chart (why: `components.data.qdrant`) with persistence, an API
  key from a generated `RandomPassword` in the Secret `qdrant-api-key` (key `api-key`)
  read by Qdrant from the environment; who reaches it over the network is the cluster
  base's (`components.cluster.namespaces`: the LLM gateway's namespace and the data
  namespace itself); with the mesh on, Linkerd `Server`s, a `MeshTLSAuthentication` (LiteLLM's identity and the data namespace's) and
  `AuthorizationPolicy`s on the Qdrant and embeddings ports;
* prod only: snapshots to S3, a CronJob (`data.snapshot_schedule`) running as the service
  account `qdrant-snapshots` that snapshots every collection on every node and uploads it
  (`components.data.snapshots`), to the bucket passed in `snapshot_bucket` or to one
  created here (`components.s3_bucket.private_bucket`: versioned, encrypted, TLS only,
  access-logged; snapshots under `qdrant/` expire after `data.snapshot_retention_days`),
  with the writer's credentials by `aws.backup_credentials.mode` (`bucket_writer`): a role
  only that service account may assume (web identity, default), or an IAM user's bounded
  key in the Secret `qdrant-snapshot-s3`; either may write only under `qdrant/`.

Exposes `embeddings_model`, `embeddings_api_base` (OpenAI-compatible, ends in `/v1`),
`vector_db_url` and `api_key_secret` (all None when disabled). Expects the cluster's
explicit `k8s.Provider` and, on prod, the explicit `aws.Provider`. The Qdrant release is
`protect`ed on prod.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import versions
from components.cloud.policies import service_account_subject
from components.config import PlatformConfig
from components.helm import pinned_release
from components.labels import selector_labels, standard_labels
from components.s3_bucket import LogTarget, WorkloadIdentity, bucket_writer, private_bucket
from components.workloads import Workload

from . import embeddings, qdrant, snapshots

NAMESPACE = "data"
COMPONENT = "data"
API_KEY_SECRET = "qdrant-api-key"  # noqa: S105 (a Secret's name)
API_KEY_KEY = "api-key"
SNAPSHOT_CREDENTIALS = "qdrant-snapshot-s3"
LINKERD_POLICY_API = "policy.linkerd.io"


@dataclass(frozen=True, kw_only=True)
class DataLayerArgs:
    """Inputs of the data layer."""

    config: PlatformConfig
    """The stack config: `data` (on/off, models, sizes, snapshots), environment, mesh."""
    provider: k8s.Provider
    """The cluster's explicit provider."""
    namespace: pulumi.Input[str] = NAMESPACE
    """Pass the created Namespace's name so everything waits for it."""
    aws_provider: aws.Provider | None = None
    """Prod: the explicit AWS provider for the snapshot bucket and user. Required on prod."""
    snapshot_bucket: pulumi.Input[str] | None = None
    """Prod: an existing bucket for snapshots; when None a bucket is created here."""
    log_target: LogTarget | None = None
    """Where a created snapshot bucket's access logs go; none by default."""
    workload_identity: WorkloadIdentity | None = None
    """AWS's trust in the cluster's tokens: required for prod snapshots with web identity."""
    gpu_ready: Sequence[pulumi.Resource] = ()
    """`GpuSupport.ready`, for an embeddings server on a GPU."""
    mesh_policy_ready: Sequence[pulumi.Resource] = ()
    """`ServiceMesh.policy_ready`: the release installing Linkerd's policy CRDs."""


def snapshots_enabled(config: PlatformConfig) -> bool:
    """Whether the vector DB is snapshotted to S3 (prod only)."""
    return config.is_prod and config.data.enabled


class DataLayer(pulumi.ComponentResource):
    """Embeddings server (TEI) and vector database (Qdrant) with policy and snapshots."""

    embeddings_model: str | None
    embeddings_api_base: str | None
    vector_db_url: str | None
    api_key_secret: str | None
    api_key_secret_ref: pulumi.Output[str] | None
    """`namespace/name` of the Secret holding the API key (the stack output's form)."""
    snapshot_bucket: pulumi.Output[str] | None
    workloads: list[Workload]
    """The embeddings server and Qdrant, for resource recommendations."""

    def __init__(
        self, name: str, args: DataLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:data:DataLayer", name, None, opts)
        config = args.config
        data = config.data
        self.embeddings_model = None
        self.embeddings_api_base = None
        self.vector_db_url = None
        self.api_key_secret = None
        self.api_key_secret_ref = None
        self.snapshot_bucket = None
        self.workloads = []
        if not data.enabled:
            self.register_outputs({})
            return
        if snapshots_enabled(config) and args.aws_provider is None:
            raise ValueError(
                "DataLayer: prod snapshots the vector DB to S3 and needs `aws_provider` "
                "(the explicit aws.Provider); pass it in DataLayerArgs"
            )
        if (
            snapshots_enabled(config)
            and config.aws.backup_credentials.mode == "web_identity"
            and args.workload_identity is None
        ):
            raise ValueError(
                "DataLayer: snapshots with web_identity need `workload_identity` "
                "(ServiceAccountIssuer.identity); pass it in DataLayerArgs"
            )
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)

        self._embeddings(name, args, child)
        release = self._qdrant(name, args, child)
        if config.mesh.enabled:
            self._mesh_policy(name, args, child)
        if snapshots_enabled(config):
            assert args.aws_provider is not None  # checked above
            self.snapshot_bucket = self._snapshots(name, args, args.aws_provider, child, release)

        self.workloads = [
            Workload(kind="Deployment", namespace=NAMESPACE, name=embeddings.NAME),
            Workload(kind="StatefulSet", namespace=NAMESPACE, name=qdrant.STATEFUL_SET),
        ]
        dns = f"{NAMESPACE}.svc.cluster.local"
        self.embeddings_model = data.embeddings_model
        self.embeddings_api_base = embeddings.api_base()
        self.vector_db_url = f"http://{qdrant.RELEASE}.{dns}:{qdrant.HTTP_PORT}"
        self.api_key_secret = API_KEY_SECRET
        self.api_key_secret_ref = pulumi.Output.concat(args.namespace, "/", API_KEY_SECRET)
        self.register_outputs(
            {
                "embeddings_model": self.embeddings_model,
                "embeddings_api_base": self.embeddings_api_base,
                "vector_db_url": self.vector_db_url,
                "api_key_secret": self.api_key_secret,
            }
        )

    def _embeddings(self, name: str, args: DataLayerArgs, child: pulumi.ResourceOptions) -> None:
        data = args.config.data
        labels = standard_labels(name=embeddings.NAME, component=COMPONENT)
        selector = selector_labels(name=embeddings.NAME)
        cache = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-embeddings-cache",
            metadata={
                "name": embeddings.cache_claim_name(),
                "namespace": args.namespace,
                "labels": labels,
            },
            spec={
                "access_modes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{data.embeddings_cache_gib}Gi"}},
            },
            # Only a weight cache, but refilling it re-downloads the model: kept on prod.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(retain_on_delete=args.config.is_prod)
            ),
        )
        gpu_deps = list(args.gpu_ready) if data.embeddings_device == "gpu" else []
        k8s.apps.v1.Deployment(
            f"{name}-embeddings",
            metadata={"name": embeddings.NAME, "namespace": args.namespace, "labels": labels},
            spec={
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"match_labels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": embeddings.pod_spec(data),
                },
            },
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[cache, *gpu_deps])
            ),
        )
        k8s.core.v1.Service(
            f"{name}-embeddings-service",
            metadata={"name": embeddings.NAME, "namespace": args.namespace, "labels": labels},
            spec={
                "selector": selector,
                "ports": [
                    {"name": "http", "port": embeddings.PORT, "target_port": "http"},
                    {"name": "metrics", "port": embeddings.METRICS_PORT, "target_port": "metrics"},
                ],
            },
            opts=child,
        )

    def _qdrant(
        self, name: str, args: DataLayerArgs, child: pulumi.ResourceOptions
    ) -> k8s.helm.v3.Release:
        config = args.config
        labels = standard_labels(name="qdrant", component=COMPONENT)
        key = random.RandomPassword(
            f"{name}-qdrant-api-key-value",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret = k8s.core.v1.Secret(
            f"{name}-qdrant-api-key",
            metadata={"name": API_KEY_SECRET, "namespace": args.namespace, "labels": labels},
            type="Opaque",
            # RandomPassword.result is a secret output; the Secret keeps it one.
            string_data={API_KEY_KEY: key.result},
            opts=child,
        )
        values = qdrant.qdrant_values(
            config.data,
            prod=config.is_prod,
            api_key_secret=API_KEY_SECRET,
            api_key_key=API_KEY_KEY,
        )
        return pinned_release(
            f"{name}-qdrant",
            versions.QDRANT,
            release_name=qdrant.RELEASE,
            namespace=args.namespace,
            overlays=args.config.helm_values,
            values=values,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[secret], protect=config.is_prod, retain_on_delete=config.is_prod
                ),
            ),
        )

    def _mesh_policy(self, name: str, args: DataLayerArgs, child: pulumi.ResourceOptions) -> None:
        """Only LiteLLM and the data namespace's own workloads may call Qdrant and TEI."""
        after_crds = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=list(args.mesh_policy_ready))
        )
        labels = standard_labels(name="data-clients", component=COMPONENT)
        authn = k8s.apiextensions.CustomResource(
            f"{name}-mesh-clients",
            api_version=f"{LINKERD_POLICY_API}/v1alpha1",
            kind="MeshTLSAuthentication",
            metadata={"name": "data-clients", "namespace": args.namespace, "labels": labels},
            spec={"identities": qdrant.mesh_client_identities()},
            opts=after_crds,
        )
        servers = {
            "qdrant-http": (qdrant.SELECTOR, qdrant.HTTP_PORT, "HTTP/1"),
            "qdrant-grpc": (qdrant.SELECTOR, qdrant.GRPC_PORT, "gRPC"),
            "embeddings-http": (selector_labels(name=embeddings.NAME), embeddings.PORT, "HTTP/1"),
        }
        for server_name, (selector, port, protocol) in servers.items():
            server = k8s.apiextensions.CustomResource(
                f"{name}-server-{server_name}",
                api_version=f"{LINKERD_POLICY_API}/v1beta3",
                kind="Server",
                metadata={"name": server_name, "namespace": args.namespace, "labels": labels},
                spec={
                    "podSelector": {"matchLabels": dict(selector)},
                    "port": port,
                    "proxyProtocol": protocol,
                },
                opts=after_crds,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-authz-{server_name}",
                api_version=f"{LINKERD_POLICY_API}/v1alpha1",
                kind="AuthorizationPolicy",
                metadata={"name": server_name, "namespace": args.namespace, "labels": labels},
                spec={
                    "targetRef": {
                        "group": LINKERD_POLICY_API,
                        "kind": "Server",
                        "name": server_name,
                    },
                    "requiredAuthenticationRefs": [
                        {
                            "group": LINKERD_POLICY_API,
                            "kind": "MeshTLSAuthentication",
                            "name": "data-clients",
                        }
                    ],
                },
                opts=pulumi.ResourceOptions.merge(
                    after_crds, pulumi.ResourceOptions(depends_on=[server, authn])
                ),
            )

    def _snapshots(
        self,
        name: str,
        args: DataLayerArgs,
        aws_provider: aws.Provider,
        child: pulumi.ResourceOptions,
        release: k8s.helm.v3.Release,
    ) -> pulumi.Output[str]:
        config = args.config
        data = config.data
        labels = standard_labels(name="qdrant-snapshots", component=COMPONENT)
        bucket_name = (
            pulumi.Output.from_input(args.snapshot_bucket)
            if args.snapshot_bucket is not None
            else self._bucket(name, aws_provider, config, args.log_target)
        )
        writer = bucket_writer(
            f"{name}-snapshot",
            bucket_name=bucket_name,
            policy_document=snapshots.bucket_policy_document,
            credentials=config.aws.backup_credentials,
            identity=args.workload_identity,
            subject=service_account_subject(NAMESPACE, snapshots.SERVICE_ACCOUNT),
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-snapshot-service-account",
            metadata={
                "name": snapshots.SERVICE_ACCOUNT,
                "namespace": args.namespace,
                "labels": labels,
            },
            automount_service_account_token=False,
            opts=child,
        )
        needs: list[pulumi.Resource] = [release, account]
        if writer.access_key is not None:
            key = writer.access_key
            needs.append(
                k8s.core.v1.Secret(
                    f"{name}-snapshot-credentials",
                    metadata={
                        "name": SNAPSHOT_CREDENTIALS,
                        "namespace": args.namespace,
                        "labels": labels,
                    },
                    type="Opaque",
                    string_data=pulumi.Output.secret(
                        {"AWS_ACCESS_KEY_ID": key.id, "AWS_SECRET_ACCESS_KEY": key.secret}
                    ),
                    opts=child,
                )
            )
        script = k8s.core.v1.ConfigMap(
            f"{name}-snapshot-script",
            metadata={
                "name": "qdrant-snapshot-script",
                "namespace": args.namespace,
                "labels": labels,
            },
            data={snapshots.SCRIPT_KEY: snapshots.snapshot_script()},
            opts=child,
        )
        pod_spec = snapshots.cronjob_pod_spec(
            replicas=data.vector_db_replicas,
            namespace=NAMESPACE,
            region=config.aws.region,
            api_key_secret=API_KEY_SECRET,
            bucket=bucket_name,
            script_configmap="qdrant-snapshot-script",
            role_arn=writer.role_arn,
            credentials_secret=SNAPSHOT_CREDENTIALS if writer.access_key is not None else None,
        )
        k8s.batch.v1.CronJob(
            f"{name}-snapshot-cronjob",
            metadata={"name": "qdrant-snapshots", "namespace": args.namespace, "labels": labels},
            spec={
                "schedule": data.snapshot_schedule,
                "concurrency_policy": "Forbid",
                "successful_jobs_history_limit": 3,
                "failed_jobs_history_limit": 3,
                "job_template": {
                    "spec": {
                        "backoff_limit": 2,
                        "active_deadline_seconds": 6 * 3600,
                        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                    }
                },
            },
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[*needs, script])
            ),
        )
        return bucket_name

    def _bucket(
        self,
        name: str,
        aws_provider: aws.Provider,
        config: PlatformConfig,
        log_target: LogTarget | None,
    ) -> pulumi.Output[str]:
        """The snapshot bucket; snapshots expire after the retention."""
        on_aws = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(provider=aws_provider, parent=self)
        ).account_id
        bucket = private_bucket(
            f"{name}-snapshots",
            bucket_name=account.apply(
                lambda a: snapshots.snapshot_bucket_name(
                    stack=config.stack_name, account_id=a, region=config.aws.region
                )
            ),
            tags={"Name": f"{name}-snapshots", "purpose": "qdrant-snapshots"},
            lifecycle_rules=[
                {
                    "id": "expire-old-snapshots",
                    "status": "Enabled",
                    "filter": {"prefix": f"{snapshots.S3_PREFIX}/"},
                    "expiration": {"days": config.data.snapshot_retention_days},
                }
            ],
            log_target=log_target,
            opts=pulumi.ResourceOptions.merge(
                on_aws, pulumi.ResourceOptions(protect=True, retain_on_delete=True)
            ),
        )
        return bucket.bucket

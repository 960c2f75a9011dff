"""LlmGateway: the LiteLLM proxy, local-first with cloud failover, keys and spend in Postgres.

Creates, in order, in the `llm-gateway` namespace (all with the explicit `k8s.Provider`):

1. the master key (pulumi-random, secret) and one Secret with it, the cloud API keys and
   the MCP servers' secret headers;
2. the Postgres cluster (`GatewayDatabase`: CNPG operator, `Cluster`, prod S3 backups with
   the explicit `aws.Provider`); LiteLLM's `DATABASE_URL` is read from the operator's app
   Secret, so the database password never passes through the program;
3. on prod (or when config asks) a shared Redis (`RouterState`) with a generated password;
4. the rendered LiteLLM config in a ConfigMap: it refers to every secret as
   `os.environ/...`, so it holds none; its SHA-256 is a pod-template annotation, so a config
   change rolls the pods;
5. ServiceAccount `litellm`;
6. the migrations Job (one per image and config), which the Deployment depends on;
7. Deployment `litellm` (pinned image, secrets only through `secretKeyRef`, liveness and
   readiness probes, hardened, writable emptyDirs, `maxUnavailable: 0`, spread over hosts,
   meshed by Linkerd), Service `litellm` on 4000, a PDB when it has more than one replica,
   and on prod an HPA (autoscaling/v2) on CPU;
8. the public route through the ingress helper (`api.<domain>`, internal-CA certificate,
   streaming-safe middlewares) and Prometheus scrape annotations (the observability
   area's ServiceMonitor selects the Service);
9. one LiteLLM virtual key per named client (`VirtualKey`, a dynamic resource through
   the admin API, with the MCP servers the client may use on a stack that has any), after
   the Deployment and the route are up and `AdminApiReachable` has checked that the
   machine running `pulumi up` reaches the admin API.

Exposes `internal_url`, `public_url` (OpenAI base URLs, with `/v1`), `models`,
`master_key` (secret), `client_keys` (secret map client → key) and `config_yaml`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster.namespaces import LLM_GATEWAY_PORT
from components.config import PlatformConfig
from components.config.mcp import header_env
from components.ingress.publish import IngressHandle, PublishArgs, PublishedService
from components.labels import selector_labels, standard_labels
from components.llm_gateway import pod
from components.llm_gateway.costs import client_budget_usd
from components.llm_gateway.litellm_config import (
    OFFLINE_ENV,
    RETRY_BACKOFF_ENV,
    hook_files,
    litellm_config_yaml,
)
from components.llm_gateway.migrations import migrations_job
from components.llm_gateway.postgres import (
    APP_SECRET_URI_KEY,
    GatewayDatabase,
    GatewayDatabaseArgs,
)
from components.llm_gateway.postgres import (
    PORT as POSTGRES_PORT,
)
from components.llm_gateway.redis import PASSWORD_KEY, RouterState, RouterStateArgs
from components.llm_gateway.virtual_keys import (
    AdminApiReachable,
    AdminApiReachableArgs,
    VirtualKey,
    VirtualKeyArgs,
    client_key_settings,
)
from components.s3_bucket import LogTarget, WorkloadIdentity
from components.workloads import Workload

NAME = "litellm"
NAMESPACE = "llm-gateway"
COMPONENT = "llm-gateway"
CONFIG_DIR = "/etc/litellm"
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
SECRET_NAME = "litellm-secrets"  # noqa: S105 (a Secret's name)
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
MASTER_KEY_LENGTH = 48
CONFIG_HASH_ANNOTATION = "llm-platform.io/config-sha256"
HOST_PREFIX = "api"
METRICS_PATH = "/metrics/"
"""LiteLLM mounts its Prometheus app at /metrics (a mount: the canonical path ends in /)."""


@dataclass(frozen=True, kw_only=True)
class LlmGatewayArgs:
    """Inputs of the LLM gateway."""

    config: PlatformConfig
    provider: k8s.Provider
    """The cluster's explicit provider; every Kubernetes resource uses it."""
    ingress: IngressHandle
    aws_provider: aws.Provider | None = None
    """Explicit AWS provider for prod's Postgres backups; required on prod."""
    log_target: LogTarget | None = None
    """Where the backup bucket's access logs go; none by default."""
    workload_identity: WorkloadIdentity | None = None
    """AWS's trust in the cluster's tokens: required for prod backups with web identity."""
    cloud_api_keys: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Secret API key of each cloud model, by its env var name (`CloudModel.api_key_env`);
    every cloud model in config must have one."""
    mcp_header_secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Secret value of each MCP server's secret header, by its env var name
    (`components.config.mcp.header_env`); every one in config must have one."""
    client_keys: Mapping[str, pulumi.Output[str]] | None = None
    """`ClientKeys.gateway_keys`: each named client's virtual key value. When None, no
    virtual keys are registered (the master key still works)."""
    mesh_ready: Sequence[pulumi.Resource] = ()
    """The mesh control plane (Linkerd's injector): the pods start after it."""
    cert_manager_ready: Sequence[pulumi.Resource] | None = None
    """cert-manager's release, for the backup plugin's certificates; default: the ingress
    handle's `crds_ready`."""
    admin_url: str | None = None
    """Where `pulumi up` reaches LiteLLM's admin API for the virtual keys. Default: the
    cluster ingress URL `https://api.<domain>` (reachable from the deploy runner, which
    reaches the cluster's API anyway; the edge cannot carry the master key)."""
    admin_ca_pem: pulumi.Input[str] | None = None
    """PEM of the CA that signs the admin URL's certificate (`InternalPki.root_ca_pem`);
    system trust when None."""
    namespace: pulumi.Input[str] = NAMESPACE
    operator_namespace: pulumi.Input[str] = "cnpg-system"


def config_hash(text: str) -> str:
    """SHA-256 of the rendered config: the pod-template annotation that rolls the pods."""
    return hashlib.sha256(text.encode()).hexdigest()


def replicas(config: PlatformConfig) -> int:
    """Replicas the Deployment starts with: at least two on prod (the HPA takes over)."""
    count = config.llm_gateway.replicas
    return max(count, 2) if config.is_prod else count


def uses_redis(config: PlatformConfig) -> bool:
    """Shared router state: always on prod, elsewhere when config asks (or replicas > 1)."""
    return config.is_prod or config.llm_gateway.uses_redis


def mcp_header_envs(config: PlatformConfig) -> list[str]:
    """The env vars of the MCP servers' secret headers, sorted."""
    return sorted(
        header_env(name, header)
        for name, server in config.llm_gateway.mcp_servers.items()
        for header in server.secret_headers
    )


def server_env(
    config: PlatformConfig,
    *,
    secret_name: pulumi.Input[str],
    db_secret: str,
    redis: RouterState | None,
) -> list[k8s.core.v1.EnvVarArgsDict]:
    """LiteLLM's environment: every secret by `secretKeyRef`, plain settings by value."""
    env: list[k8s.core.v1.EnvVarArgsDict] = [
        pod.secret_env(MASTER_KEY_ENV, secret=secret_name, key=MASTER_KEY_ENV),
        pod.secret_env(pod.DB_URL_ENV, secret=db_secret, key=APP_SECRET_URI_KEY),
        *(
            pod.secret_env(env_name, secret=secret_name, key=env_name)
            for env_name in sorted(
                {m.api_key_env for m in config.llm_gateway.cloud_models.values()}
            )
        ),
        *(
            pod.secret_env(env_name, secret=secret_name, key=env_name)
            for env_name in mcp_header_envs(config)
        ),
        # Migrations run in their Job; the server only checks the schema.
        {"name": "DISABLE_SCHEMA_UPDATE", "value": "true"},
        {"name": "LITELLM_LOG", "value": "INFO"},
        {"name": "JSON_LOGS", "value": "True"},
        *pod.writable_env(),
    ]
    env += [{"name": k, "value": v} for k, v in sorted(RETRY_BACKOFF_ENV.items())]
    # Price map, beta headers and admin-UI feeds from the pinned package, never fetched.
    env += [{"name": k, "value": v} for k, v in sorted(OFFLINE_ENV.items())]
    if redis is not None:
        env += [
            {"name": "REDIS_HOST", "value": redis.host},
            {"name": "REDIS_PORT", "value": str(redis.port)},
            pod.secret_env("REDIS_PASSWORD", secret=redis.password_secret, key=PASSWORD_KEY),
        ]
    return env


def _probe(path: str, *, failures: int, period: int = 10) -> k8s.core.v1.ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": "http"},
        "period_seconds": period,
        "timeout_seconds": 5,
        "failure_threshold": failures,
    }


def server_container(env: list[k8s.core.v1.EnvVarArgsDict]) -> k8s.core.v1.ContainerArgsDict:
    """The LiteLLM server container (pure)."""
    return {
        "name": NAME,
        "image": pod.litellm_image(),
        "command": ["litellm"],
        "args": [
            "--config",
            CONFIG_PATH,
            "--port",
            str(LLM_GATEWAY_PORT),
            "--num_workers",
            "1",
        ],
        "ports": [{"name": "http", "container_port": LLM_GATEWAY_PORT}],
        "env": env,
        "startup_probe": _probe("/health/liveliness", failures=30, period=5),
        "liveness_probe": _probe("/health/liveliness", failures=3),
        "readiness_probe": _probe("/health/readiness", failures=3),
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "2Gi"},
        },
        "security_context": pod.container_security(),
        "volume_mounts": [
            {"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
            *pod.writable_mounts(),
        ],
    }


def pod_annotations(config: PlatformConfig, *, digest: str) -> dict[str, str]:
    """Pod-template annotations: config hash (rollout), mesh injection, scrape hints."""
    annotations = {
        CONFIG_HASH_ANNOTATION: digest,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(LLM_GATEWAY_PORT),
        "prometheus.io/path": METRICS_PATH,
    }
    if config.mesh.enabled:
        annotations["linkerd.io/inject"] = "enabled"
    return annotations


def hpa_spec(config: PlatformConfig) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgsDict:
    """autoscaling/v2 HPA spec: from the prod minimum to the configured maximum on CPU."""
    gateway = config.llm_gateway
    count = replicas(config)
    return {
        "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": NAME},
        "min_replicas": count,
        "max_replicas": max(gateway.autoscale_max_replicas, count),
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "average_utilization": gateway.autoscale_cpu_percent,
                    },
                },
            }
        ],
    }


def _secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    secret: pulumi.Output[str] = pulumi.Output.secret(value)
    return secret


class LlmGateway(pulumi.ComponentResource):
    """LiteLLM with its Postgres, Redis, migrations and virtual keys, at `api.<domain>`."""

    internal_url: str
    public_url: str
    admin_url: str
    models: list[str]
    master_key: pulumi.Output[str]
    client_keys: pulumi.Output[dict[str, str]]
    config_yaml: str
    deployment: k8s.apps.v1.Deployment
    database: GatewayDatabase
    redis: RouterState | None
    virtual_keys: dict[str, VirtualKey]
    artifacts: dict[str, pulumi.Output[str]]
    workloads: list[Workload]
    """LiteLLM and its Redis, for resource recommendations."""

    def __init__(
        self, name: str, args: LlmGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:llm-gateway:LlmGateway", name, None, opts)
        config = args.config
        gateway = config.llm_gateway
        missing = {m.api_key_env for m in gateway.cloud_models.values()} - set(args.cloud_api_keys)
        if missing:
            raise ValueError(
                f"LlmGateway: no secret for cloud key env {sorted(missing)}; pass each "
                "cloud model's key in `cloud_api_keys` (by `api_key_env`)"
            )
        missing = set(mcp_header_envs(config)) - set(args.mcp_header_secrets)
        if missing:
            raise ValueError(
                f"LlmGateway: no secret for MCP header env {sorted(missing)}; pass each in "
                "`mcp_header_secrets` (by `header_env`)"
            )
        mine = pulumi.ResourceOptions(parent=self)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = standard_labels(name=NAME, component=COMPONENT)
        selector = selector_labels(name=NAME)
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": NAME,
            "namespace": args.namespace,
            "labels": labels,
        }
        self.internal_url = f"http://{NAME}.{NAMESPACE}.svc.cluster.local:{LLM_GATEWAY_PORT}/v1"
        self.models = sorted({*config.inference.models, *gateway.cloud_models})

        # 1. Master key and the Secret LiteLLM reads its keys from.
        master = random.RandomPassword(
            f"{name}-master-key", length=MASTER_KEY_LENGTH, special=False, opts=mine
        )
        self.master_key = pulumi.Output.secret(pulumi.Output.concat("sk-", master.result))
        secrets = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata={**metadata, "name": SECRET_NAME},
            type="Opaque",
            string_data={
                MASTER_KEY_ENV: self.master_key,
                **{env: _secret(v) for env, v in args.cloud_api_keys.items()},
                **{env: _secret(v) for env, v in sorted(args.mcp_header_secrets.items())},
            },
            opts=child,
        )

        # 2. Postgres; 3. Redis.
        self.database = GatewayDatabase(
            f"{name}-db",
            GatewayDatabaseArgs(
                config=config,
                provider=args.provider,
                namespace=args.namespace,
                operator_namespace=args.operator_namespace,
                aws_provider=args.aws_provider,
                log_target=args.log_target,
                workload_identity=args.workload_identity,
                cert_manager_ready=(
                    args.ingress.crds_ready
                    if args.cert_manager_ready is None
                    else args.cert_manager_ready
                ),
            ),
            opts=mine,
        )
        self.redis = (
            RouterState(
                f"{name}-redis",
                RouterStateArgs(
                    provider=args.provider, namespace=args.namespace, client_selector=selector
                ),
                opts=mine,
            )
            if uses_redis(config)
            else None
        )

        self.workloads = [Workload(kind="Deployment", namespace=NAMESPACE, name=NAME)]
        if self.redis is not None:
            self.workloads.append(self.redis.workload)

        # 4. The rendered config, by content hash.
        self.config_yaml = litellm_config_yaml(config, redis=self.redis is not None)
        hooks = hook_files(config)
        # The hooks roll the pods too: they are part of what the proxy runs.
        digest = config_hash(self.config_yaml + "".join(hooks[n] for n in sorted(hooks)))
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={**metadata, "name": f"{NAME}-config"},
            data={"config.yaml": self.config_yaml, **hooks},
            opts=child,
        )
        self.artifacts = {
            "llm-gateway/litellm-config.yaml": pulumi.Output.from_input(self.config_yaml)
        }

        # 5. ServiceAccount; 6. migrations, once per image and config.
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=metadata,
            automount_service_account_token=False,
            opts=child,
        )
        migrations = migrations_job(
            f"{name}-migrations",
            namespace=args.namespace,
            config_digest=digest,
            db_secret=self.database.app_secret,
            db_secret_key=APP_SECRET_URI_KEY,
            db_host=self.database.rw_host,
            db_port=POSTGRES_PORT,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=self.database.ready)
            ),
        )

        # 7. The server.
        count = replicas(config)
        env = server_env(
            config,
            secret_name=secrets.metadata["name"],
            db_secret=self.database.app_secret,
            redis=self.redis,
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata,
            spec={
                "replicas": count,
                "revision_history_limit": 5,
                "selector": {"match_labels": selector},
                "strategy": {
                    "type": "RollingUpdate",
                    "rolling_update": {"max_unavailable": 0, "max_surge": 1},
                },
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": pod_annotations(config, digest=digest),
                    },
                    "spec": {
                        "service_account_name": service_account.metadata["name"],
                        "automount_service_account_token": False,
                        "enable_service_links": False,
                        "termination_grace_period_seconds": 60,
                        "security_context": pod.pod_security(),
                        "topology_spread_constraints": [
                            {
                                "max_skew": 1,
                                "topology_key": "kubernetes.io/hostname",
                                "when_unsatisfiable": "ScheduleAnyway",
                                "label_selector": {"match_labels": selector},
                            }
                        ],
                        "containers": [server_container(env)],
                        "volumes": [
                            {"name": "config", "config_map": {"name": config_map.metadata["name"]}},
                            *pod.writable_volumes(),
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[
                        migrations,
                        *args.mesh_ready,
                        *(self.redis.ready if self.redis is not None else []),
                    ]
                ),
            ),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": LLM_GATEWAY_PORT, "target_port": "http"}],
            },
            opts=child,
        )
        if count > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=metadata,
                spec={"max_unavailable": 1, "selector": {"match_labels": selector}},
                opts=child,
            )
        if config.is_prod:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=metadata,
                spec=hpa_spec(config),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[self.deployment])
                ),
            )

        # 8. Publication and metrics.
        published = PublishedService(
            f"{name}-route",
            PublishArgs(
                ingress=args.ingress,
                host_prefix=HOST_PREFIX,
                namespace=args.namespace,
                service_name=service.metadata["name"],
                service_port=LLM_GATEWAY_PORT,
                component=COMPONENT,
                streaming=True,
            ),
            opts=mine,
        )
        self.public_url = f"{published.url}/v1"

        # 9. Virtual keys, once the server answers at the admin URL and this machine
        # reaches it (one clear error otherwise, before any key is touched).
        self.admin_url = args.admin_url or published.url
        self.virtual_keys = {}
        if args.client_keys is not None and config.clients:
            unknown = set(config.clients) - set(args.client_keys)
            if unknown:
                raise ValueError(f"LlmGateway: no gateway key for clients {sorted(unknown)}")
            settings = {
                client_name: client_key_settings(
                    client_name,
                    client,
                    max_budget_usd=client_budget_usd(config, client_name),
                    mcp=bool(gateway.mcp_servers),
                )
                for client_name, client in sorted(config.clients.items())
            }
            reachable = AdminApiReachable(
                f"{name}-admin-api-reachable",
                AdminApiReachableArgs(
                    admin_url=self.admin_url,
                    ca_pem=args.admin_ca_pem,
                    keys={c: (args.client_keys[c], settings[c]) for c in settings},
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment, published]),
            )
            for client_name in settings:
                self.virtual_keys[client_name] = VirtualKey(
                    f"{name}-key-{client_name}",
                    VirtualKeyArgs(
                        admin_url=self.admin_url,
                        master_key=self.master_key,
                        key=args.client_keys[client_name],
                        settings=settings[client_name],
                        ca_pem=args.admin_ca_pem,
                    ),
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[self.deployment, published, reachable]
                    ),
                )
        keys: dict[str, pulumi.Output[str]] = {n: k.key for n, k in self.virtual_keys.items()}
        self.client_keys = pulumi.Output.secret(
            pulumi.Output.all(**keys) if keys else pulumi.Output.from_input({})
        )
        self.register_outputs(
            {
                "internal_url": self.internal_url,
                "public_url": self.public_url,
                "models": self.models,
                "master_key": self.master_key,
                "client_keys": self.client_keys,
            }
        )

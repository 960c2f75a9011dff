"""RouterState: a Redis the LiteLLM replicas share for rate limits, cooldowns and caching.

Without it each LiteLLM process keeps its own counters, cooldowns and key revocations, so
limits multiply with the replicas and a revoked key keeps working on the other pods.

Creates, in the gateway's namespace: a generated password (pulumi-random, secret) in a
Secret; one small StatefulSet of the pinned official Redis image, without persistence
(the state is rebuilt within a cooldown); a ClusterIP Service; and a NetworkPolicy that
admits only the LiteLLM pods on the Redis port. The password reaches Redis through an
env var written into a config file on an emptyDir at start, so it is in no command line
and no object spec. Expects the explicit `k8s.Provider`; exposes `host`, `port`,
`password_secret` (Secret name, key `password`) and `ready`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import versions
from components.labels import selector_labels, standard_labels
from components.pod_security import NON_ROOT_UID, restricted_pod_security
from components.workloads import Workload

NAME = "litellm-redis"
NAMESPACE = "llm-gateway"
PORT = 6379
PASSWORD_KEY = "password"  # noqa: S105 (a key name in the Secret, not a password)
PASSWORD_ENV = "REDIS_PASSWORD"  # noqa: S105 (an env var name)
COMPONENT = "llm-gateway"
CLIENT_NAME = "litellm"
"""The Deployment whose pods may connect."""
REDIS_UID = NON_ROOT_UID
"""Not the image's `redis` user (999): its entrypoint only changes users when started as
root, and redis-server needs no user of its own; the data volume is this group's."""
CONF_DIR = "/run/redis"
MAX_MEMORY = "200mb"


def redis_start_script() -> str:
    """Shell run as the container's command: config file with the password, then redis."""
    # printf, not echo: no interpretation of the value; umask keeps the file private.
    return (
        "set -eu\n"
        "umask 077\n"
        f'printf "requirepass %s\\n" "${PASSWORD_ENV}" > {CONF_DIR}/redis.conf\n'
        f"exec redis-server {CONF_DIR}/redis.conf --port {PORT} --save '' --appendonly no "
        f"--maxmemory {MAX_MEMORY} --maxmemory-policy allkeys-lru --protected-mode yes\n"
    )


def statefulset_spec() -> k8s.apps.v1.StatefulSetSpecArgsDict:
    """The Redis StatefulSet spec (pure)."""
    labels = standard_labels(name=NAME, component=COMPONENT)
    selector = selector_labels(name=NAME)
    password_env: k8s.core.v1.EnvVarArgsDict = {
        "name": PASSWORD_ENV,
        "value_from": {"secret_key_ref": {"name": NAME, "key": PASSWORD_KEY}},
    }
    # redis-cli reads the password from REDISCLI_AUTH, never from its arguments.
    ping = ["sh", "-c", f'REDISCLI_AUTH="${PASSWORD_ENV}" redis-cli -p {PORT} ping | grep -q PONG']
    return {
        "service_name": NAME,
        "replicas": 1,
        "selector": {"match_labels": selector},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "automount_service_account_token": False,
                "enable_service_links": False,
                "security_context": restricted_pod_security(REDIS_UID),
                "containers": [
                    {
                        "name": "redis",
                        "image": versions.REDIS.ref,
                        "command": ["sh", "-c", redis_start_script()],
                        "env": [password_env],
                        "ports": [{"name": "redis", "container_port": PORT}],
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "128Mi"},
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                        },
                        "readiness_probe": {
                            "exec_": {"command": ping},
                            "period_seconds": 5,
                            "timeout_seconds": 3,
                        },
                        "liveness_probe": {
                            "tcp_socket": {"port": "redis"},
                            "period_seconds": 20,
                        },
                        "security_context": {
                            "allow_privilege_escalation": False,
                            "read_only_root_filesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volume_mounts": [
                            {"name": "data", "mount_path": "/data"},
                            {"name": "conf", "mount_path": CONF_DIR},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "data", "empty_dir": {"size_limit": "256Mi"}},
                    {"name": "conf", "empty_dir": {"medium": "Memory", "size_limit": "1Mi"}},
                ],
            },
        },
    }


def network_policy_spec(
    *, client_selector: Mapping[str, str]
) -> k8s.networking.v1.NetworkPolicySpecArgsDict:
    """Ingress to Redis only from the pods matching `client_selector`, on the Redis port."""
    return {
        "pod_selector": {"match_labels": selector_labels(name=NAME)},
        "policy_types": ["Ingress"],
        "ingress": [
            {
                "from_": [{"pod_selector": {"match_labels": dict(client_selector)}}],
                "ports": [{"protocol": "TCP", "port": PORT}],
            }
        ],
    }


@dataclass(frozen=True, kw_only=True)
class RouterStateArgs:
    """Inputs of the shared router state."""

    provider: k8s.Provider
    namespace: pulumi.Input[str] = NAMESPACE
    client_selector: Mapping[str, str] = field(
        default_factory=lambda: selector_labels(name=CLIENT_NAME)
    )
    """Labels of the pods allowed to connect (default: the LiteLLM pods)."""


class RouterState(pulumi.ComponentResource):
    """Redis for the gateway's shared router state."""

    host: str
    port: int
    password_secret: str
    """Secret holding the password under `password`."""
    ready: list[pulumi.Resource]
    workload: Workload
    """The StatefulSet, for resource recommendations."""

    def __init__(
        self, name: str, args: RouterStateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:llm-gateway:RouterState", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = standard_labels(name=NAME, component=COMPONENT)
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": NAME,
            "namespace": args.namespace,
            "labels": labels,
        }
        self.host = f"{NAME}.{NAMESPACE}.svc.cluster.local"
        self.port = PORT
        self.password_secret = NAME
        self.workload = Workload(kind="StatefulSet", namespace=NAMESPACE, name=NAME)

        password = random.RandomPassword(
            f"{name}-password", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=metadata,
            type="Opaque",
            # RandomPassword.result is a secret output; the Secret keeps it one.
            string_data={PASSWORD_KEY: password.result},
            opts=child,
        )
        policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata={**metadata, "name": f"{NAME}-clients"},
            spec=network_policy_spec(client_selector=args.client_selector),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec={
                "type": "ClusterIP",
                "selector": selector_labels(name=NAME),
                "ports": [{"name": "redis", "port": PORT, "target_port": "redis"}],
            },
            opts=child,
        )
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=metadata,
            spec=statefulset_spec(),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[secret, policy])
            ),
        )
        self.ready = [statefulset, service]
        self.register_outputs({"host": self.host, "port": self.port})

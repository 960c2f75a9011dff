"""The migrations Job: LiteLLM's database schema applied once, before new pods start.

LiteLLM 1.83.14 applies its Prisma migrations at start-up unless told not to; with two or
more replicas starting together they race on the same database. The platform turns that
off in the server (`DISABLE_SCHEMA_UPDATE=true`, litellm/proxy/db/prisma_client.py
`should_update_prisma_schema`) and runs the same code path once, in a Job:
`litellm --skip_server_startup --enforce_prisma_migration_check` (litellm/proxy/proxy_cli.py:
migrations through `prisma migrate deploy` are the default since `--use_prisma_migrate` was
retired; `--enforce_prisma_migration_check` makes a failed migration exit non-zero so the Job
fails instead of "continuing startup"). The connection string comes from `DATABASE_URL`
alone, so the Job needs neither the config file nor any other secret.

The Job's name holds the image tag and the config hash: a new LiteLLM version or config
creates a new Job (Pulumi replaces it, since a Job's template is immutable), which Pulumi
awaits to completion; the Deployment depends on it, so no new pod starts before the schema
is there. An init container waits (bounded) until Postgres accepts connections. The Job
stays out of the mesh: a Linkerd proxy sidecar would keep it from ever completing. No
`ttlSecondsAfterFinished`: a Job the cluster deletes by itself would show as drift and be
recreated on the next `pulumi up`; Pulumi deletes the previous Job when it replaces it.
"""

from __future__ import annotations

import re

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.labels import standard_labels
from components.llm_gateway import pod

NAME_PREFIX = "litellm-migrate"
MAX_NAME = 63
WAIT_ATTEMPTS = 60
WAIT_SECONDS = 5
MIGRATION_DIR = f"{pod.STATE_DIR}/migrations"
COMPONENT = "llm-gateway"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def job_name(*, image_tag: str, config_digest: str) -> str:
    """`litellm-migrate-<tag>-<hash>`: unique per image and config, a valid DNS label."""
    suffix = config_digest[:10]
    room = MAX_NAME - len(NAME_PREFIX) - len(suffix) - 2
    tag = _slug(image_tag)[:room].strip("-")
    return f"{NAME_PREFIX}-{tag}-{suffix}"


def wait_for_postgres(*, host: str, port: int) -> k8s.core.v1.ContainerArgsDict:
    """Init container polling Postgres with pg_isready, bounded to about five minutes."""
    script = (
        f"for i in $(seq 1 {WAIT_ATTEMPTS}); do "
        f"pg_isready -q -h {host} -p {port} && exit 0; sleep {WAIT_SECONDS}; done; "
        f"echo 'postgres at {host}:{port} not ready after "
        f"{WAIT_ATTEMPTS * WAIT_SECONDS}s' >&2; exit 1"
    )
    return {
        "name": "wait-for-postgres",
        "image": versions.CNPG_POSTGRES.ref,
        "command": ["sh", "-c", script],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "security_context": pod.container_security(),
    }


def job_spec(
    *, db_secret: str, db_secret_key: str, db_host: str, db_port: int
) -> k8s.batch.v1.JobSpecArgsDict:
    """The Job's spec (pure): wait for Postgres, then apply LiteLLM's migrations."""
    labels = standard_labels(name=NAME_PREFIX, component=COMPONENT)
    env: list[k8s.core.v1.EnvVarArgsDict] = [
        pod.secret_env(pod.DB_URL_ENV, secret=db_secret, key=db_secret_key),
        {"name": "DISABLE_SCHEMA_UPDATE", "value": "false"},
        {"name": "LITELLM_MIGRATION_DIR", "value": MIGRATION_DIR},
        *pod.writable_env(),
    ]
    return {
        "backoff_limit": 3,
        "active_deadline_seconds": 1200,
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {"linkerd.io/inject": "disabled"},
            },
            "spec": {
                "restart_policy": "Never",
                "automount_service_account_token": False,
                "enable_service_links": False,
                "security_context": pod.pod_security(),
                "init_containers": [wait_for_postgres(host=db_host, port=db_port)],
                "containers": [
                    {
                        "name": "migrate",
                        "image": pod.litellm_image(),
                        "command": ["litellm"],
                        "args": ["--skip_server_startup", "--enforce_prisma_migration_check"],
                        "env": env,
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "512Mi"},
                            "limits": {"cpu": "1", "memory": "1Gi"},
                        },
                        "security_context": pod.container_security(),
                        "volume_mounts": pod.writable_mounts(),
                    }
                ],
                "volumes": pod.writable_volumes(),
            },
        },
    }


def migrations_job(
    name: str,
    *,
    namespace: pulumi.Input[str],
    config_digest: str,
    db_secret: str,
    db_secret_key: str,
    db_host: str,
    db_port: int,
    opts: pulumi.ResourceOptions,
) -> k8s.batch.v1.Job:
    """The migrations Job for this image and config (`opts`: parent, provider, depends_on)."""
    return k8s.batch.v1.Job(
        name,
        metadata={
            "name": job_name(image_tag=versions.LITELLM_PROXY.tag, config_digest=config_digest),
            "namespace": namespace,
            "labels": standard_labels(name=NAME_PREFIX, component=COMPONENT),
        },
        spec=job_spec(
            db_secret=db_secret, db_secret_key=db_secret_key, db_host=db_host, db_port=db_port
        ),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                custom_timeouts=pulumi.CustomTimeouts(create="25m", update="25m"),
            ),
        ),
    )

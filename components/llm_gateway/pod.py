"""Pod pieces the LiteLLM server and its migrations Job share (pure values).

Hardening: non-root (the image's default user is root, so a fixed unprivileged UID is
set), read-only root filesystem, every capability dropped, seccomp RuntimeDefault, no
service-account token. LiteLLM 1.83.14 writes in a few places at run time, each given an
emptyDir here: temporary files and Prisma's migration diffs (`/tmp`, also `HOME` and the
cache), the admin UI and logo it copies out of the package at start
(`LITELLM_UI_PATH`, `LITELLM_ASSETS_PATH`, proxy_server.py says to point them at an
emptyDir for read-only deployments) and, in the Job only, the migrations it copies before
`prisma migrate deploy` (`LITELLM_MIGRATION_DIR`, litellm-proxy-extras utils.py).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.pod_security import restricted_pod_security

UID = 65532
"""Unprivileged UID/GID the LiteLLM containers run as."""
STATE_DIR = "/var/lib/litellm"
TMP_DIR = "/tmp"  # noqa: S108 (an emptyDir of the pod, not the host's /tmp)
DB_URL_ENV = "DATABASE_URL"


def secret_env(name: str, *, secret: pulumi.Input[str], key: str) -> k8s.core.v1.EnvVarArgsDict:
    """An env var read from a Secret: the only way a secret reaches a container."""
    return {"name": name, "value_from": {"secret_key_ref": {"name": secret, "key": key}}}


def writable_env() -> list[k8s.core.v1.EnvVarArgsDict]:
    """Env that points every path LiteLLM writes to at an emptyDir."""
    return [
        {"name": "HOME", "value": TMP_DIR},
        {"name": "TMPDIR", "value": TMP_DIR},
        {"name": "XDG_CACHE_HOME", "value": f"{TMP_DIR}/.cache"},
        {"name": "LITELLM_UI_PATH", "value": f"{STATE_DIR}/ui"},
        {"name": "LITELLM_ASSETS_PATH", "value": f"{STATE_DIR}/assets"},
    ]


def pod_security() -> k8s.core.v1.PodSecurityContextArgsDict:
    """Pod-level security context (Pod Security `restricted`)."""
    return restricted_pod_security(UID)


def container_security() -> k8s.core.v1.SecurityContextArgsDict:
    """Container-level security context."""
    return {
        "allow_privilege_escalation": False,
        "read_only_root_filesystem": True,
        "run_as_non_root": True,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def writable_volumes() -> list[k8s.core.v1.VolumeArgsDict]:
    """The emptyDirs behind `writable_env` (size-limited so a leak cannot fill the node)."""
    return [
        {"name": "tmp", "empty_dir": {"size_limit": "1Gi"}},
        {"name": "state", "empty_dir": {"size_limit": "512Mi"}},
    ]


def writable_mounts() -> list[k8s.core.v1.VolumeMountArgsDict]:
    """Mounts of `writable_volumes`."""
    return [
        {"name": "tmp", "mount_path": TMP_DIR},
        {"name": "state", "mount_path": STATE_DIR},
    ]


def litellm_image() -> str:
    """The pinned LiteLLM proxy image."""
    return versions.LITELLM_PROXY.ref

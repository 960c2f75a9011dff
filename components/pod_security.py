"""The pod-level security context every platform workload runs with (pure values)."""

from __future__ import annotations

import pulumi_kubernetes as k8s

NON_ROOT_UID = 10001
"""UID/GID of the platform's own containers whose image would otherwise run as root."""


def restricted_pod_security(uid: int = NON_ROOT_UID) -> k8s.core.v1.PodSecurityContextArgsDict:
    """Pod Security `restricted` at pod level: a fixed unprivileged UID and GID, volumes
    group-owned by that GID (`fs_group`), seccomp RuntimeDefault."""
    return {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": uid,
        "fs_group": uid,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }

"""The runner area's names and Helm values, as pure functions of the config.

The scale sets' names are what workflows put in `runs-on` (ARC registers each scale set
with its name as its label: `autoscalingrunnerset_controller.go`, gha-runner-scale-set
0.14.2), so they are fixed here, and tests/unit/test_workflows.py holds the workflows to
them. Everything the pods run is pinned in `components.versions`.

Hardening, per pod the controller starts:
- runner pods (from the scale set's `template`): Pod Security `restricted` (UID 1001, the
  image's `runner` user; no privilege escalation, so no `sudo`), no service-account
  token (a job reaches the cluster with the stack's own kubeconfig, never the pod's
  identity), `minRunners: 0`;
- listener pods (from `listenerTemplate`; the controller merges the pod and container
  security contexts and resources into its own pod: `resourcebuilder.go`
  `mergeListenerPodWithTemplate`): `restricted`, read-only root, in the controller's
  namespace;
- the controller: `restricted`, watching only the runners' namespace
  (`flags.watchSingleNamespace`: Roles there instead of cluster-wide rights).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components import versions
from components.cluster.namespaces import ARC_RUNNERS_NAMESPACE, ARC_SYSTEM_NAMESPACE
from components.config import PlatformConfig
from components.config.cluster import GPU_CLASS_LABEL, GPU_TAINT_KEY
from components.config.runners import GpuRunnerSetConfig, RunnerSetConfig

SCALE_SET_NAMES: Mapping[str, str] = {
    "amd64": "llm-platform-amd64",
    "arm64": "llm-platform-arm64",
    "gpu": "llm-platform-gpu",
}
"""Each kind's scale set: its Helm release, its name at GitHub and its `runs-on` label."""
CONTROLLER_RELEASE = "arc-controller"
CONTROLLER_SERVICE_ACCOUNT = "arc-controller"
GITHUB_APP_SECRET = "arc-github-app"  # noqa: S105 (a Secret's name)
RUNNER_UID = 1001
"""The `runner` user of ghcr.io/actions/actions-runner (actions/runner images/Dockerfile)."""
CONTROLLER_UID = 65532
"""distroless `nonroot`, the controller image's user (ARC's Dockerfile)."""
CONTROLLER_HEALTH_PORT = 8081
LISTENER_CONTAINER = "listener"
"""The listener container's name (`autoscalinglistener_controller.go`): a template container
of this name is merged into it, any other is added beside it."""
RUNNER_CONTAINER = "runner"


def _restricted_container() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "seccompProfile": {"type": "RuntimeDefault"}}


def _image_tag(image: versions.Image) -> str:
    """What a chart's `image.tag` takes: the tag, with the digest when pinned."""
    return image.ref.removeprefix(f"{image.repository}:")


def controller_values() -> dict[str, Any]:
    """Values of the controller chart (gha-runner-scale-set-controller)."""
    image = versions.ARC_CONTROLLER_IMAGE
    return {
        "image": {"repository": image.repository, "tag": _image_tag(image)},
        "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT},
        "podSecurityContext": {**_pod_security(CONTROLLER_UID), "runAsGroup": CONTROLLER_UID},
        "securityContext": {**_restricted_container(), "readOnlyRootFilesystem": True},
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "flags": {
            "logLevel": "info",
            "logFormat": "json",
            "watchSingleNamespace": ARC_RUNNERS_NAMESPACE,
            # main.go serves /healthz and /readyz there; the chart then probes them.
            "healthProbeBindAddress": f":{CONTROLLER_HEALTH_PORT}",
        },
    }


def _listener_template() -> dict[str, Any]:
    return {
        "spec": {
            "securityContext": {**_pod_security(CONTROLLER_UID), "runAsGroup": CONTROLLER_UID},
            "containers": [
                {
                    "name": LISTENER_CONTAINER,
                    "securityContext": {
                        **_restricted_container(),
                        "readOnlyRootFilesystem": True,
                    },
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "64Mi"},
                        "limits": {"cpu": "250m", "memory": "256Mi"},
                    },
                }
            ],
        }
    }


def runner_pod_spec(kind: str, spec: RunnerSetConfig) -> dict[str, Any]:
    """The runner pod of a scale set (the chart's `template.spec`)."""
    limits: dict[str, str] = {"cpu": spec.cpu_limit, "memory": spec.memory_limit}
    pod: dict[str, Any] = {
        "securityContext": _pod_security(RUNNER_UID),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": {"kubernetes.io/os": "linux", "kubernetes.io/arch": kind},
    }
    if isinstance(spec, GpuRunnerSetConfig):
        limits["nvidia.com/gpu"] = "1"
        pod.update(
            {
                "runtimeClassName": "nvidia",
                "nodeSelector": {GPU_CLASS_LABEL: spec.gpu_class},
                "tolerations": [
                    {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
                ],
            }
        )
    pod["containers"] = [
        {
            "name": RUNNER_CONTAINER,
            "image": versions.ACTIONS_RUNNER.ref,
            "command": ["/home/runner/run.sh"],
            "securityContext": _restricted_container(),
            "resources": {"requests": {"cpu": spec.cpu, "memory": spec.memory}, "limits": limits},
        }
    ]
    return pod


def scale_set_values(config: PlatformConfig, kind: str, *, secret_name: Any) -> dict[str, Any]:
    """Values of one scale set's release (gha-runner-scale-set); `secret_name` is the
    GitHub App Secret's name (an Output, so the release follows the Secret)."""
    runners = config.runners
    spec = runners.scale_sets()[kind]
    return {
        "githubConfigUrl": runners.github_config_url,
        "githubConfigSecret": secret_name,
        "runnerGroup": runners.runner_group,
        "runnerScaleSetName": SCALE_SET_NAMES[kind],
        "minRunners": 0,
        "maxRunners": spec.max_runners,
        # Given, the chart does not look the controller up in a live cluster (_helpers.tpl).
        "controllerServiceAccount": {
            "namespace": ARC_SYSTEM_NAMESPACE,
            "name": CONTROLLER_SERVICE_ACCOUNT,
        },
        "listenerTemplate": _listener_template(),
        "template": {"spec": runner_pod_spec(kind, spec)},
    }
